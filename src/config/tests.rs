//! Unit tests of `config`.

use super::*;

#[test]
fn defaults_parse() {
    let c = Config::parse_from(["wschat"]);
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.idle_timeout(), Duration::from_secs(40));
}

#[test]
fn size_options_take_suffixes() {
    let c = Config::parse_from([
        "wschat",
        "--max-file-size",
        "8M",
        "--queue-bytes",
        "48M",
        "--max-text",
        "2K",
        "--max-message-size",
        "128K",
    ]);
    assert_eq!(
        (
            c.max_file_size,
            c.queue_bytes,
            c.max_text,
            c.max_message_size
        ),
        (8 << 20, 48 << 20, 2048, 128 << 10)
    );
    let d = Config::parse_from(["wschat"]);
    assert_eq!(
        (
            d.max_file_size,
            d.queue_bytes,
            d.max_text,
            d.max_message_size
        ),
        (16 << 20, 32 << 20, 4096, 65536)
    );
}

#[test]
fn file_values_are_defaults_below_flags() {
    let dir = std::env::temp_dir().join(format!("wschat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wschat.toml");
    std::fs::write(
        &file,
        "history = 7\nping_interval = 0.5\nallow-origin = [\"https://a.example\", \"https://b.example\"]\nmax-connections = 9\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let c = Config::try_load_from(["wschat", "--config", path, "--max-connections", "3"]).unwrap();
    assert_eq!(c.history, 7);
    assert_eq!(c.ping_interval, Duration::from_millis(500));
    assert_eq!(c.allow_origins, ["https://a.example", "https://b.example"]);
    assert_eq!(c.max_connections, 3);

    std::fs::write(&file, "histroy = 7\n").unwrap();
    let e = Config::try_load_from(["wschat", "--config", path]).unwrap_err();
    assert!(e.to_string().contains("unknown option \"histroy\""), "{e}");
    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    assert!(Config::try_load_from(["wschat", "--config", path]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
