//! The `wschat` binary's commands other than serving (run by
//! `ws::auth::run_tool`).

/// Commands of the `wschat` binary other than serving.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Tool {
    /// Print an identity token for NAME, signed with the server's secret
    /// (--auth-secret, --auth-secret-file or their environment variables),
    /// for scripts, tests and sign-in links (`http://HOST/#token=TOKEN`).
    Token {
        /// The name the token's holder goes by (its `sub`).
        name: String,
        /// Rooms the token allows (comma-separated or repeated); every room
        /// when not given.
        #[arg(long, value_delimiter = ',', value_name = "ROOMS")]
        rooms: Vec<String>,
        /// Seconds the token stays valid.
        #[arg(long, default_value_t = 86_400.0, value_name = "SECS")]
        ttl: f64,
        /// A moderator's token (claim `"mod":true`): its holder may delete
        /// anyone's message.
        #[arg(long = "mod")]
        moderator: bool,
    },
}
