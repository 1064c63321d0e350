//! The one table of Lua scripts (`src/store/lua/<name>.lua`). Each runs as
//! one atomic EVALSHA and is the Redis twin of the `MemoryStore` method of the
//! same name (`src/store/memory.rs`): a rule changed in one must change in the
//! other, and the shared behaviour suite runs on both.

use deadpool_redis::redis::Script;

/// Declares the table: the [`Scripts`] struct with one field per script,
/// and (for tests) every script's name and source.
macro_rules! lua_scripts {
    ($($name:ident),+ $(,)?) => {
        /// The scripts, hashed once when the store is built; each call sends
        /// only the hash (EVALSHA) and loads the script once per server on
        /// NOSCRIPT (a fresh or restarted Redis, a cluster master that has not
        /// seen it yet).
        pub(super) struct Scripts {
            $(pub(super) $name: Script,)+
        }

        impl Scripts {
            pub(super) fn new() -> Self {
                Self {
                    $($name: Script::new(include_str!(concat!("../lua/", stringify!($name), ".lua"))),)+
                }
            }
        }

        /// Every script's name and source, as shipped.
        #[cfg(test)]
        const SOURCES: &[(&str, &str)] = &[
            $((stringify!($name), include_str!(concat!("../lua/", stringify!($name), ".lua"))),)+
        ];
    };
}

lua_scripts! {
    put_code,
    verify_and_consume,
    pending_lifetime,
    discard_code,
    cancel_code,
    record_send,
    refund_send,
    claim_idempotency,
    complete_idempotency,
    release_idempotency,
}

#[cfg(test)]
mod tests {
    use super::SOURCES;

    /// Redis Cluster runs a script on the node owning its declared keys and
    /// refuses keys of other slots; a key built inside Lua would escape that
    /// check. So every command names exactly `KEYS[1]` (or `key`, its alias).
    #[test]
    fn every_script_touches_only_its_one_declared_key() {
        for (name, source) in SOURCES {
            let code: String = source
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.contains("KEYS[2]"), "{name} uses a second key");
            for call in code.split("redis.call(").skip(1) {
                let args: Vec<&str> = call.split([',', ')']).map(str::trim).collect();
                let command = args.first().copied().unwrap_or_default();
                if command == "'TIME'" {
                    continue;
                }
                let target = args.get(1).copied().unwrap_or_default();
                assert!(
                    target == "KEYS[1]" || target == "key",
                    "{name}: {command} on `{target}`, not the declared key"
                );
            }
            if code.contains("local key") {
                assert!(code.contains("local key = KEYS[1]"), "{name}");
            }
        }
    }
}
