//! Planning: the [`Target`]s (module versions, with or without their zips) each [`Item`] needs.

use std::path::Path;

use gomod::ModulePath;

use super::graph::go_mod_targets;
use super::item::{Item, TOOLCHAIN_MODULE};
use super::latest::resolve_latest;
use super::warmer::{Target, Warmer};

/// The targets of one item; go.mod files of a module graph are fetched `concurrency` at a
/// time.
pub(super) async fn plan_item(
    warmer: &dyn Warmer,
    item: &Item,
    concurrency: usize,
) -> Result<Vec<Target>, String> {
    match item {
        Item::Version(module, version) => Ok(vec![Target {
            module: module.clone(),
            version: version.clone(),
            zip: true,
        }]),
        Item::Latest(module) => {
            let version = resolve_latest(warmer, module).await?;
            Ok(vec![Target {
                module: module.clone(),
                version,
                zip: true,
            }])
        }
        Item::Toolchain { .. } => {
            let version = item
                .toolchain_version()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{item} is not a toolchain"))?;
            Ok(vec![Target {
                module: ModulePath::parse(TOOLCHAIN_MODULE).map_err(|e| e.to_string())?,
                version,
                zip: true,
            }])
        }
        Item::GoSum(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            go_sum_targets(path, &text)
        }
        Item::GoMod(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            go_mod_targets(warmer, &path.display().to_string(), &text, concurrency).await
        }
    }
}

/// Every line of a go.sum: `/go.mod` lines need the `.mod`, others everything.
fn go_sum_targets(path: &Path, text: &[u8]) -> Result<Vec<Target>, String> {
    let name = path.display().to_string();
    let sum = gomod::gosum::GoSum::parse(&name, text).map_err(|e| e.to_string())?;
    sum.entries
        .iter()
        .map(|entry| {
            let (module, version) = entry
                .module()
                .map_err(|e| format!("{name}:{}: {e}", entry.line))?;
            Ok(Target {
                module,
                version,
                zip: !entry.go_mod,
            })
        })
        .collect()
}
