//! The values of single options, each parsed and checked by one function
//! that says what it accepts when it refuses: sizes with their suffixes,
//! durations, rates, counts, addresses, origins and log filters. Kept apart
//! from `config`, which puts the options together.

use std::net::SocketAddr;
use std::time::Duration;

/// Parses a duration given in (possibly fractional) seconds, like `0.5`.
pub(super) fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| "a number of seconds, 0 or more".to_owned())
}

/// A duration that must be more than zero (a zero ping interval would drop
/// every client at once).
pub(super) fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    match parse_secs(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err("a number of seconds more than 0, like 20 or 0.5".to_owned()),
    }
}

/// A rate per second: finite and more than zero.
pub(super) fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("a number more than 0, like 20 or 0.5".to_owned()),
    }
}

/// A count or size for which zero makes no sense.
pub(super) fn parse_count<T: std::str::FromStr + PartialOrd + Default>(
    s: &str,
) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("a whole number, 1 or more".to_owned()),
    }
}

/// A number of bytes, with an optional K, M or G suffix (powers of 1024;
/// `KiB`, `MiB`, `GiB` are also accepted).
pub(super) fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => {
            return Err(format!(
                "a number of bytes like 65536, 64K or 512M, not {s:?}"
            ));
        }
    };
    number
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("a number of bytes, 1 or more, like 65536, 64K or 512M, not {s:?}"))
}

/// A number of bytes as [`parse_bytes`] reads it, or 0 for no limit.
pub(super) fn parse_bytes_or_zero(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_bytes(s)
}

/// A memory budget: at least [`crate::limits::budget::MIN_BUDGET`].
pub(super) fn parse_budget(s: &str) -> Result<usize, String> {
    let bytes = parse_bytes(s)?;
    if bytes < crate::limits::budget::MIN_BUDGET {
        return Err(format!(
            "at least {} MiB",
            crate::limits::budget::MIN_BUDGET >> 20
        ));
    }
    Ok(bytes)
}

/// `--listen`: an IP address and port, or a host name and port, looked up
/// once. A name's first IPv4 address is preferred, so that `localhost:8080`
/// means 127.0.0.1 as most people expect, whatever order the resolver
/// gives.
pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let s = s.trim();
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let usage = "an address and port like 127.0.0.1:8080, [::1]:8080 or localhost:8080";
    let found: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{usage}; {s:?}: {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{usage}; {s:?} has no address"))
}

/// `--allow-origin`: an origin as a browser sends it (`scheme://host` and
/// maybe `:port`, nothing after), `null`, or `*`. Anything else could
/// never equal a browser's `Origin`, so it is refused rather than ignored.
pub(super) fn parse_origin(s: &str) -> Result<String, String> {
    let origin = s.trim();
    if origin == "*" || origin.eq_ignore_ascii_case("null") {
        return Ok(origin.to_owned());
    }
    let why = |what: &str| {
        format!(
            "{origin:?} is not an origin: {what} (give scheme://host or scheme://host:port, \
             like https://chat.example.com, or null, or *)"
        )
    };
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or_else(|| why("no scheme://"))?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(why("the scheme is not one"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) || authority.contains(char::is_whitespace) {
        return Err(why("an origin has no path, query, user or spaces"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| why("no closing ]"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(why("no host"));
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(why("the port is not a number up to 65535"));
    }
    Ok(origin.to_owned())
}

/// A public URL: `http` or `https`, a host and maybe a port.
pub(super) fn parse_public_url(s: &str) -> Result<String, String> {
    crate::proto::addr::public_authority(s).map(|_| s.to_owned())
}

/// Checks a log filter in RUST_LOG's syntax: comma-separated directives,
/// each `LEVEL` or `TARGET=LEVEL`. (RUST_LOG also takes a bare `TARGET`,
/// meaning every level; here a bare word must be a level, so that a typo
/// is not taken for a target.)
pub(super) fn parse_log_filter(s: &str) -> Result<String, String> {
    for directive in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (target, Some(level)),
            None if directive.parse::<log::LevelFilter>().is_ok() => continue,
            None => ("", None),
        };
        let target_ok = !target.is_empty()
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
        if !target_ok || level.is_some_and(|l| l.parse::<log::LevelFilter>().is_err()) {
            return Err(format!(
                "not a log level or filter: {directive:?} (use error, warn, info, debug, \
                 trace, or TARGET=LEVEL)"
            ));
        }
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_seconds() {
        assert_eq!(parse_secs("0.25").unwrap(), Duration::from_millis(250));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn origins_are_origins() {
        for ok in [
            "*",
            "null",
            "https://chat.example.com",
            "https://chat.example.com/",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "chrome-extension://abcdef",
        ] {
            assert!(parse_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "notaurl",
            "chat.example.com",
            "https://",
            "https://chat.example.com/path",
            "https://chat.example.com:99999",
            "https://user@chat.example.com",
            "1http://x",
            "http://[::1",
        ] {
            let e = parse_origin(bad).unwrap_err();
            assert!(e.contains("is not an origin"), "{bad}: {e}");
        }
    }

    #[test]
    fn listen_takes_names() {
        assert_eq!(
            parse_listen("0.0.0.0:8080"),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert_eq!(
            parse_listen("localhost:8080"),
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("no-such-host.invalid:80").is_err());
    }

    #[test]
    fn log_filters() {
        for ok in [
            "warn",
            "info,wschat=debug",
            "wschat::dispatcher=trace",
            "OFF",
        ] {
            assert!(parse_log_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["loud", "wschat", "wschat=loud", "=debug", "a b=info"] {
            assert!(parse_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("16M"), Ok(16 << 20));
        assert_eq!(parse_bytes("32MiB"), Ok(32 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes(" 64 KB "), Ok(64 << 10));
        for bad in [
            "",
            "0",
            "0K",
            "K",
            "4T",
            "-1",
            "1.5M",
            "4 K B",
            "99999999999999999999G",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
