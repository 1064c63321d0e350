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
    count_prefix_send,
    count_prefix_approval,
    suspended_prefixes,
}

#[cfg(test)]
mod tests {
    use super::SOURCES;

    /// The names a script gives its declared keys: `local key = KEYS[1]` or
    /// `local a, b = KEYS[1], KEYS[2]`.
    fn key_aliases(code: &str) -> Vec<String> {
        code.lines()
            .filter_map(|line| line.trim().strip_prefix("local "))
            .filter_map(|binding| binding.split_once('='))
            .filter(|(_, value)| {
                value
                    .split(',')
                    .all(|part| part.trim().starts_with("KEYS["))
            })
            .flat_map(|(names, _)| names.split(',').map(|name| name.trim().to_owned()))
            .collect()
    }

    /// Redis Cluster runs a script on the node owning its declared keys and
    /// refuses keys of other slots; a key built inside Lua would escape that
    /// check. So every command names a declared key (`KEYS[n]` or a local
    /// name for it), and only the pumping guard's decision declares more
    /// than one (they share a hash tag, tested in `pumping.rs`).
    #[test]
    fn every_script_touches_only_its_declared_keys() {
        for (name, source) in SOURCES {
            let code: String = source
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            let aliases = key_aliases(&code);
            for call in code.split("redis.call(").skip(1) {
                let args: Vec<&str> = call.split([',', ')']).map(str::trim).collect();
                let command = args.first().copied().unwrap_or_default();
                if command == "'TIME'" {
                    continue;
                }
                let target = args.get(1).copied().unwrap_or_default();
                assert!(
                    target.starts_with("KEYS[") || aliases.iter().any(|alias| alias == target),
                    "{name}: {command} on `{target}`, not a declared key"
                );
            }
            if *name != "count_prefix_send" {
                assert!(!code.contains("KEYS[2]"), "{name} uses a second key");
            }
        }
    }
}
