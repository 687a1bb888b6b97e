//! [`Config::load`]: defaults, then the TOML file, then the environment, then validation.

use std::collections::BTreeMap;
use std::path::Path;

use super::Config;
use super::env::{ENV_PREFIX, ENV_SEPARATOR, is_ours};
use super::error::{ConfigError, Origin, classify};

impl Config {
    /// Loads defaults, then `file` (TOML) if given, then the `GOMODPROXY_*` entries of `env`,
    /// and validates the result.
    ///
    /// `env` is passed in rather than read here so that tests need not touch the process
    /// environment; the binary passes [`std::env::vars_os`] through [`env_vars`](super::env_vars).
    pub fn load<I>(file: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let env: BTreeMap<String, String> =
            env.into_iter().filter(|(name, _)| is_ours(name)).collect();

        // The file alone first, so that an error in it is blamed on it and not on the
        // environment merged on top.
        let file_source = file.map(|path| {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        });
        if let Some(source) = &file_source {
            let path = file.map(Path::to_path_buf).unwrap_or_default();
            config::Config::builder()
                .add_source(source.clone())
                .build()
                .and_then(|c| c.try_deserialize::<Config>())
                .map_err(|e| classify(e, Origin::File(path), &BTreeMap::new()))?;
        }

        let mut builder = config::Config::builder();
        if let Some(source) = file_source {
            builder = builder.add_source(source);
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator(ENV_SEPARATOR)
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("private")
            .with_list_parse_key("sumdb.databases")
            .with_list_parse_key("prewarm.items")
            .with_list_parse_key("prewarm.sumdb_known_trees")
            .with_list_parse_key("fetch.redirect_hosts")
            .with_list_parse_key("direct.allowed_protocols")
            .with_list_parse_key("direct.insecure")
            .source(Some(env.clone().into_iter().collect()));
        let config: Config = builder
            .add_source(environment)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| classify(e, Origin::Env, &env))?;

        let mut config = config;
        // An empty variable is an empty list, not a list of one empty entry.
        config.prewarm.items.retain(|s| !s.trim().is_empty());
        config
            .prewarm
            .sumdb_known_trees
            .retain(|p| !p.as_os_str().is_empty());
        config.fetch.redirect_hosts.retain(|s| !s.trim().is_empty());
        config.validate(file, &env)?;
        Ok(config)
    }
}
