//! Host bindings for the Spin interfaces, generated from the project's own `wit/`.
//!
//! The world bound here lists only the three `fermyon:spin` imports of the
//! `chat-service` world; WASI (p2) and `wasi:http` come from wasmtime-wasi(-http), whose
//! bindings are Spin's too. Generating from `wit/` (not from a copy) means a change to
//! the project's Spin WIT changes these signatures, and a component whose imports the
//! linker cannot satisfy fails to instantiate.

wasmtime::component::bindgen!({
    // Only the Spin package: wit/deps/wasi-http does not parse with wit-parser 0.246
    // (a `//` comment above `package` in two files counts as duplicate package docs).
    path: "../../wit/deps/spin",
    inline: "
        package spin-test-host:imports;
        world spin-imports {
            import fermyon:spin/redis@2.0.0;
            import fermyon:spin/mysql@2.0.0;
            import fermyon:spin/variables@2.0.0;
        }
    ",
    imports: { default: async },
    // Lets unit tests compare converted values.
    additional_derives: [PartialEq],
    with: {
        "fermyon:spin/redis.connection": crate::redis::RedisConnection,
        "fermyon:spin/mysql.connection": crate::mysql::MysqlConnection,
    },
});

pub use fermyon::spin::{mysql, rdbms_types, redis, variables};
