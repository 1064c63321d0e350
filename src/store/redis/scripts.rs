//! The one table of Lua scripts (`src/store/lua/<name>.lua`). Each runs as
//! one atomic EVALSHA and is the Redis twin of the `MemoryStore` method of the
//! same name (`src/store/memory.rs`): a rule changed in one must change in the
//! other, and the shared behaviour suite runs on both. A composed script
//! (`count_send_and_put_code`) runs several of them in one EVALSHA; its twin
//! is `store::count_in_steps`, which runs the same steps one call each.
//! A script that reads or writes a number's record (or a client's packed
//! send log) runs after `number_record.lua`, the one definition of that
//! record's layout; one on a spend window runs after `spend_window.lua`.

use deadpool_redis::redis::Script;

/// Declares the table: the [`Scripts`] struct with one field per script,
/// and (for tests) every script's name and source. A composed script is its
/// own file (a driver) after the named scripts, each wrapped as
/// `local function <name>(KEYS, ARGV) <script> end`: its parameters shadow
/// the globals, so the wrapped script runs unchanged on the keys and
/// arguments the driver hands it, and no rule is written twice.
macro_rules! lua_scripts {
    (
        $($name:ident),+ ;
        $($composed:ident = [$($step:ident),+]),+ $(,)?
    ) => {
        /// The scripts, hashed once when the store is built; each call sends
        /// only the hash (EVALSHA) and loads the script once per server on
        /// NOSCRIPT (a fresh or restarted Redis, a cluster master that has not
        /// seen it yet).
        pub(super) struct Scripts {
            $(pub(super) $name: Script,)+
            $(pub(super) $composed: Script,)+
        }

        impl Scripts {
            pub(super) fn new() -> Self {
                Self {
                    $($name: Script::new(lua_scripts!(@source $name)),)+
                    $($composed: Script::new(lua_scripts!(@composed $composed [$($step),+])),)+
                }
            }
        }

        /// Every script's name and source, as shipped.
        #[cfg(test)]
        const SOURCES: &[(&str, &str)] = &[
            $((stringify!($name), lua_scripts!(@source $name)),)+
            $((stringify!($composed), lua_scripts!(@composed $composed [$($step),+])),)+
        ];

        /// Each composed script's name and its driver alone.
        #[cfg(test)]
        const DRIVERS: &[(&str, &str)] = &[
            $((stringify!($composed), lua_scripts!(@source $composed)),)+
        ];
    };
    (@source $name:ident) => {
        lua_source!($name)
    };
    (@composed $composed:ident [$($step:ident),+]) => {
        concat!(
            $(
                "local function ", stringify!($step), "(KEYS, ARGV)\n",
                lua_source!($step),
                "\nend\n",
            )+
            include_str!(concat!("../lua/", stringify!($composed), ".lua"))
        )
    };
}

/// One script's source as run: the file, after `number_record.lua` for the
/// scripts on a number's record or a packed send log, after
/// `spend_window.lua` for the spend windows' scripts.
macro_rules! lua_source {
    (@file $name:ident) => {
        include_str!(concat!("../lua/", stringify!($name), ".lua"))
    };
    (@record $name:ident) => {
        concat!(lua_source!(@file number_record), "\n", lua_source!(@file $name))
    };
    (@spend $name:ident) => {
        concat!(lua_source!(@file spend_window), "\n", lua_source!(@file $name))
    };
    (put_code) => { lua_source!(@record put_code) };
    (verify_and_consume) => { lua_source!(@record verify_and_consume) };
    (pending_lifetime) => { lua_source!(@record pending_lifetime) };
    (lock_remaining) => { lua_source!(@record lock_remaining) };
    (discard_code) => { lua_source!(@record discard_code) };
    (cancel_code) => { lua_source!(@record cancel_code) };
    (record_packed_send) => { lua_source!(@record record_packed_send) };
    (refund_packed_send) => { lua_source!(@record refund_packed_send) };
    (reserve_spend) => { lua_source!(@spend reserve_spend) };
    (refund_spend) => { lua_source!(@spend refund_spend) };
    ($name:ident) => { lua_source!(@file $name) };
}

lua_scripts! {
    put_code,
    verify_and_consume,
    pending_lifetime,
    lock_remaining,
    discard_code,
    cancel_code,
    record_send,
    refund_send,
    record_packed_send,
    refund_packed_send,
    claim_idempotency,
    complete_idempotency,
    release_idempotency,
    count_prefix_send,
    count_prefix_approval,
    suspended_prefixes,
    lift_prefix,
    prefix_counts,
    prefix_list,
    reserve_spend,
    refund_spend,
    layout_marker;
    count_send_and_put_code = [
        record_send,
        record_packed_send,
        count_prefix_send,
        put_code,
        lock_remaining,
        refund_send,
        refund_packed_send,
        discard_code,
        reserve_spend
    ],
    count_verify_and_consume = [record_send, refund_send, verify_and_consume],
}

#[cfg(test)]
mod tests {
    use super::{DRIVERS, SOURCES};

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

    /// `source` without its comment lines, so names in comments are not read as code.
    fn without_comments(source: &str) -> String {
        source
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Redis Cluster runs a script on the node owning its declared keys and
    /// refuses keys of other slots; a key built inside Lua would escape that
    /// check. So every command names a declared key (`KEYS[n]` or a local
    /// name for it), and only the pumping guard's per-prefix scripts and
    /// the spend scripts declare more than one (they share a hash tag,
    /// tested in `pumping.rs` and `spend.rs`), besides the scripts on a
    /// number's record, handed its legacy names only where there are no
    /// slots (`number_record.rs`).
    #[test]
    fn every_script_touches_only_its_declared_keys() {
        for (name, source) in SOURCES {
            let code = without_comments(source);
            let aliases = key_aliases(&code);
            for call in code.split("redis.call(").skip(1) {
                let args: Vec<&str> = call.split([',', ')']).map(str::trim).collect();
                let command = args.first().copied().unwrap_or_default();
                // None names a key: Redis's clock, and the database's size
                // and names, which only `layout_marker` reads (no command
                // of it runs on a name it found).
                if command == "'TIME'" || command == "'DBSIZE'" || command == "'SCAN'" {
                    continue;
                }
                let target = args.get(1).copied().unwrap_or_default();
                assert!(
                    target.starts_with("KEYS[") || aliases.iter().any(|alias| alias == target),
                    "{name}: {command} on `{target}`, not a declared key"
                );
            }
            let per_prefix = [
                "count_prefix_send",
                "count_prefix_approval",
                "lift_prefix",
                "prefix_counts",
                "count_send_and_put_code",
                "count_verify_and_consume",
                "put_code",
                "verify_and_consume",
                "pending_lifetime",
                "lock_remaining",
                "discard_code",
                "cancel_code",
                "record_packed_send",
                "refund_packed_send",
            ];
            if !per_prefix.contains(name) {
                assert!(!code.contains("KEYS[2]"), "{name} uses a second key");
            }
        }
    }

    /// A composed script's driver runs no command itself, and hands each
    /// step only declared keys: its first argument is a table of `KEYS[..]`.
    #[test]
    fn every_driver_hands_its_steps_only_declared_keys() {
        for (name, driver) in DRIVERS {
            let steps: &[&str] = match *name {
                "count_send_and_put_code" => &[
                    "record_send",
                    "record_packed_send",
                    "count_prefix_send",
                    "put_code",
                    "lock_remaining",
                    "refund_send",
                    "refund_packed_send",
                    "discard_code",
                    "reserve_spend",
                ],
                "count_verify_and_consume" => &["record_send", "refund_send", "verify_and_consume"],
                other => panic!("{other}: name its steps here"),
            };
            let code = without_comments(driver);
            assert!(!code.contains("redis.call"), "{name} runs a command itself");
            let mut calls = 0;
            for step in steps {
                for call in code.split(&format!("{step}(")).skip(1) {
                    calls += 1;
                    let keys = call.split_once('}').map_or("", |(keys, _)| keys);
                    let keys = keys.trim().strip_prefix('{').unwrap_or_default();
                    assert!(
                        keys.split(',').all(|key| key.trim().starts_with("KEYS[")),
                        "{name}: {step} is handed `{keys}`, not declared keys"
                    );
                }
            }
            assert!(calls >= steps.len(), "{name} calls its steps");
        }
    }
}
