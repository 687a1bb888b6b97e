//! Unit tests of the parent module.

use super::*;

/// A log of `n` records `"record i\n"`, with every stored hash.
fn build(n: i64) -> Vec<Hash> {
    let mut stored: Vec<Hash> = Vec::new();
    for i in 0..n {
        let rh = record_hash(format!("record {i}\n").as_bytes());
        let new = stored_hashes_for_record(i, rh, |x| stored[x as usize]);
        assert_eq!(stored.len() as i64, stored_hash_index(0, i));
        stored.extend(new);
        assert_eq!(stored.len() as i64, stored_hash_count(i + 1));
    }
    stored
}

/// The tile's data as a server of that log would serve it.
fn tile_data(stored: &[Hash], tile: &Tile) -> Vec<u8> {
    let level = tile.l as u32 * tile.h;
    (0..i64::from(tile.w))
        .flat_map(|i| stored[stored_hash_index(level, (tile.n << tile.h) + i) as usize].0)
        .collect()
}

/// A tree hash computed the slow way, straight from the records.
fn naive_root(lo: i64, hi: i64) -> Hash {
    if hi - lo == 1 {
        return record_hash(format!("record {lo}\n").as_bytes());
    }
    let (k, _) = max_pow2(hi - lo);
    node_hash(naive_root(lo, lo + k), naive_root(lo + k, hi))
}

#[test]
fn stored_hash_indexes_invert() {
    for index in 0..5000 {
        let (level, n) = split_stored_hash_index(index);
        assert_eq!(stored_hash_index(level, n), index, "{index}");
    }
    assert_eq!(stored_hash_index(0, 0), 0);
    assert_eq!(stored_hash_index(0, 1), 1);
    assert_eq!(stored_hash_index(1, 0), 2);
    assert_eq!(stored_hash_index(0, 2), 3);
}

#[test]
fn tree_hashes_match_the_naive_merkle_tree() {
    let stored = build(300);
    for n in 1..300 {
        let root = tree_hash(n, |x| stored[x as usize]);
        assert_eq!(root, naive_root(0, n), "n={n}");
    }
}

#[test]
fn tile_paths() {
    let cases = [
        (
            Tile {
                h: 3,
                l: 4,
                n: 1234067,
                w: 1,
            },
            "tile/3/4/x001/x234/067.p/1",
        ),
        (
            Tile {
                h: 3,
                l: 4,
                n: 1234067,
                w: 8,
            },
            "tile/3/4/x001/x234/067",
        ),
        (
            Tile {
                h: 8,
                l: 0,
                n: 4822,
                w: 135,
            },
            "tile/8/0/x004/822.p/135",
        ),
        (
            Tile {
                h: 8,
                l: -1,
                n: 0,
                w: 256,
            },
            "tile/8/data/000",
        ),
        (
            Tile {
                h: 8,
                l: 2,
                n: 0,
                w: 18,
            },
            "tile/8/2/000.p/18",
        ),
    ];
    for (tile, path) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(Tile::parse_path(path).unwrap(), tile);
    }
    for bad in [
        "tile/8/0/x004/0822",
        "tile/8/0/4822",
        "tile/8/0/001.p/256",
        "tile/8/0/001.p/0",
        "tile/8/0/001.p/007",
        "tile/0/0/001",
        "tile/8/0",
        "tiles/8/0/001",
        "tile/8/0/x000/001",
    ] {
        assert!(Tile::parse_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn rightmost_tiles_of_a_large_tree() {
    // The vector from PROTOCOL.md: tree size 1,234,567 at height 8.
    let n = 1_234_567i64;
    let edge = |l: i32| {
        let level_n = n >> (8 * l as u32);
        Tile {
            h: 8,
            l,
            n: level_n >> 8,
            w: 1,
        }
        .parent(0, n)
        .unwrap()
        .path()
    };
    assert_eq!(edge(0), "tile/8/0/x004/822.p/135");
    assert_eq!(edge(1), "tile/8/1/018.p/214");
    assert_eq!(edge(2), "tile/8/2/000.p/18");
}

#[test]
fn plans_authenticate_honest_tiles_and_reject_tampered_ones() {
    let h = 2; // small tiles so a small log has several levels
    let stored = build(300);
    for n in [1i64, 5, 16, 17, 64, 100, 255, 256, 299] {
        let tree = Tree {
            n,
            hash: tree_hash(n, |x| stored[x as usize]),
        };
        let wanted: Vec<i64> = [0, n / 2, n - 1]
            .iter()
            .map(|&r| stored_hash_index(0, r))
            .collect();
        let plan = TilePlan::new(tree, h, &wanted).unwrap();
        let data: Vec<Vec<u8>> = plan.tiles().iter().map(|t| tile_data(&stored, t)).collect();
        let got = plan.verify(&data).unwrap();
        let want: Vec<Hash> = wanted.iter().map(|&x| stored[x as usize]).collect();
        assert_eq!(got, want, "n={n}");
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i][0] ^= 1;
            assert!(
                plan.verify(&bad).is_err(),
                "n={n}: flipped tile {i} accepted"
            );
        }
        let wrong_tree = TilePlan::new(
            Tree {
                n,
                hash: record_hash(b"x"),
            },
            h,
            &wanted,
        )
        .unwrap();
        assert!(wrong_tree.verify(&data).is_err());
    }
}

#[test]
fn a_narrower_tile_is_planned_at_the_trees_width() {
    let stored = build(300);
    let tree = Tree {
        n: 299,
        hash: tree_hash(299, |x| stored[x as usize]),
    };
    // Tile (h=8, l=0, n=1) has 43 entries in this tree; a client with an older tree asks
    // for 20 of them.
    let asked = Tile {
        h: 8,
        l: 0,
        n: 1,
        w: 20,
    };
    assert_eq!(asked.width_in_tree(299), Some(43));
    let plan = TilePlan::for_tile(tree, &asked).unwrap();
    assert!(plan.tiles().contains(&Tile { w: 43, ..asked }));
    let data: Vec<Vec<u8>> = plan.tiles().iter().map(|t| tile_data(&stored, t)).collect();
    plan.verify(&data).unwrap();
    let beyond = Tile {
        h: 8,
        l: 0,
        n: 1,
        w: 44,
    };
    assert!(TilePlan::for_tile(tree, &beyond).is_err());
    assert!(
        TilePlan::for_tile(
            tree,
            &Tile {
                h: 8,
                l: 0,
                n: 2,
                w: 1
            }
        )
        .is_err()
    );
}

#[test]
fn tree_notes() {
    let tree = Tree {
        n: 72470197,
        hash: Hash(
            STANDARD
                .decode("zn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=")
                .unwrap()
                .try_into()
                .unwrap(),
        ),
    };
    let text = tree.format();
    assert_eq!(
        text,
        "go.sum database tree\n72470197\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n"
    );
    assert_eq!(Tree::parse(&text).unwrap(), tree);
    assert_eq!(Tree::parse(&format!("{text}extra\n")).unwrap(), tree);
    for bad in [
        "go.sum database tree\n01\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n",
        "go.sum database tree\n-1\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n",
        "go.sum database tree\n1\nAAAA\n",
        "other tree\n1\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n",
    ] {
        assert!(Tree::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_narrower_tile_is_cut_from_a_wider_one_of_any_later_tree() {
    // Tree sizes whose right edges cut the same level-0 and level-1 tiles at different widths.
    let stored = build(70_000);
    let h = 8;
    for (old_n, new_n) in [(300i64, 500i64), (65_791, 69_999), (1000, 65_536 + 300)] {
        for l in 0..3 {
            let level = l as u32 * h;
            let old_width = old_n >> level;
            if old_width == 0 {
                continue;
            }
            // The rightmost tile of the old tree at this level, as the new tree has it.
            let k = (old_width - 1) >> h;
            let old = Tile {
                h,
                l,
                n: k,
                w: (old_width - (k << h)).min(1 << h) as u32,
            };
            let wide_w = old.width_in_tree(new_n).unwrap();
            assert!(wide_w >= old.w, "{old:?} in {new_n}");
            let wide = old.with_width(wide_w);
            let wide_data = tile_data(&stored, &wide);
            let cut = derive_tile(&wide, &wide_data, &old).unwrap();
            assert_eq!(cut, &tile_data(&stored, &old)[..], "{old:?} from {wide:?}");
        }
    }
    let t = Tile {
        h,
        l: 0,
        n: 1,
        w: 10,
    };
    let data = tile_data(&stored, &t);
    assert!(
        derive_tile(&t, &data, &t.with_width(11)).is_none(),
        "wider than the source"
    );
    assert!(
        derive_tile(&t, &data[1..], &t.with_width(5)).is_none(),
        "short data"
    );
    let elsewhere = Tile {
        n: 2,
        ..t.with_width(5)
    };
    assert!(
        derive_tile(&t, &data, &elsewhere).is_none(),
        "another place"
    );
    let data_tile = Tile { l: -1, ..t };
    assert!(derive_tile(&data_tile, &data, &data_tile.with_width(5)).is_none());
    assert_eq!(derive_tile(&t, &data, &t).unwrap(), &data[..]);
}
