//! The checksum-database code against real sum.golang.org data (see testdata/sumdb/README.md):
//! a real lookup's signed tree verifies with the real key, and the real tiles prove the record.

use std::path::{Path, PathBuf};

use gomod::sumdb::Lookup;
use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::{TilePlan, Tree, record_hash, stored_hash_index};

const KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sumdb")
}

fn lookup() -> Lookup {
    Lookup::parse(&std::fs::read(testdata().join("lookup-golang.org-x-text@v0.3.7")).unwrap())
        .unwrap()
}

fn plan_and_tiles(l: &Lookup) -> (TilePlan, Vec<Vec<u8>>) {
    let verifier = Verifier::parse(KEY).unwrap();
    let tree = Tree::parse(verifier.open(&l.note).unwrap()).unwrap();
    assert_eq!(tree.n, 51421875);
    let plan = TilePlan::new(tree, 8, &[stored_hash_index(0, l.id)]).unwrap();
    let data = plan
        .tiles()
        .iter()
        .map(|t| std::fs::read(testdata().join(t.path())).unwrap())
        .collect();
    (plan, data)
}

#[test]
fn a_real_record_is_proven_by_real_tiles() {
    let l = lookup();
    assert_eq!(l.id, 6465158);
    let record = l.record("golang.org/x/text", "v0.3.7");
    // The same hashes as PROTOCOL.md's vectors (and go.sum files everywhere).
    assert_eq!(
        record.zip.as_deref(),
        Some("h1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=")
    );
    assert_eq!(
        record.go_mod.as_deref(),
        Some("h1:u+2+/6zg+i71rQMx5EYifcz6MCKuco9NR6JIITiCfzQ=")
    );
    let (plan, data) = plan_and_tiles(&l);
    let paths: Vec<String> = plan.tiles().iter().map(|t| t.path()).collect();
    assert_eq!(
        paths,
        [
            "tile/8/3/000.p/3",
            "tile/8/2/003.p/16",
            "tile/8/1/784.p/162",
            "tile/8/0/x200/866.p/179",
            "tile/8/2/000",
            "tile/8/1/098",
            "tile/8/0/x025/254",
        ]
    );
    let hashes = plan.verify(&data).unwrap();
    assert_eq!(hashes, vec![record_hash(l.text.as_bytes())]);
}

#[test]
fn tampering_with_any_real_tile_or_record_is_caught() {
    let l = lookup();
    let (plan, data) = plan_and_tiles(&l);
    for i in 0..data.len() {
        let mut bad = data.clone();
        let last = bad[i].len() - 1;
        bad[i][last] ^= 0x80;
        // Every byte of every planned tile is covered by the root or by a parent's hash.
        assert!(plan.verify(&bad).is_err(), "flipped tile {i} accepted");
        let mut first = data.clone();
        first[i][0] ^= 0x01;
        assert!(plan.verify(&first).is_err(), "flipped tile {i} accepted");
    }
    // The record's own entry: flip a byte of the hash the record maps to.
    let (tile, range) = gomod::sumdb::tlog::Tile::for_index(8, stored_hash_index(0, l.id));
    let j = plan
        .tiles()
        .iter()
        .position(|t| t.l == tile.l && t.n == tile.n)
        .unwrap();
    let mut bad = data.clone();
    bad[j][range.start] ^= 1;
    assert!(plan.verify(&bad).is_err());
    // A different record text does not hash to the proven entry.
    let forged = l.text.replace("olpwvP2K", "olpwvP2L");
    assert_ne!(
        plan.verify(&data).unwrap(),
        vec![record_hash(forged.as_bytes())]
    );
}
