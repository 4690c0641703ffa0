//! The names egressc derives from object names, pinned: the `active-for-…` node label, the VIP
//! Lease name and the provenance label value, for names at and past each length limit and for
//! names no validation would let through. These names live in clusters (labels on nodes, Lease
//! objects), so a change to any of them is a breaking change; the snapshot makes it visible.

use egressc_core::lease_protocol::lease_name;
use egressc_core::model::labels::active_for_name_part;
use egressc_core::render::label_value;

/// Names around every limit (52 for the label key, 63 for label values, 241 for Lease names),
/// with a separator or a multi-byte character at the cut, and malformed ones.
fn names() -> Vec<String> {
    let mut names = vec![
        "gw".to_owned(),
        "a".repeat(52),
        "a".repeat(53),
        "g".repeat(63),
        "g".repeat(64),
        format!("{}.example", "a".repeat(70)),
        format!("{}-.x", "q".repeat(60)),
        format!("{}.{}", "y".repeat(40), "z".repeat(30)),
        format!("{}-{}", "b".repeat(41), "c".repeat(20)),
        format!("{}.{}", "d".repeat(51), "e".repeat(20)),
        "a.b-c".repeat(20),
        "a".repeat(241),
        "a".repeat(242),
        "g".repeat(253),
        format!("{}.{}", "h".repeat(230), "i".repeat(22)),
        format!("{}-{}", "j".repeat(229), "k".repeat(23)),
        // Not valid object names; the functions must still give a value and never panic.
        "---".to_owned(),
        "ä: x".to_owned(),
        "Upper_Case".to_owned(),
        format!("-{}", "m".repeat(70)),
        format!("{}ä{}", "n".repeat(40), "o".repeat(20)),
        format!("{}_{}", "p".repeat(40), "r".repeat(20)),
        "-".repeat(70),
        format!("{}ü{}", "s".repeat(229), "t".repeat(30)),
        format!("{}_{}", "u".repeat(229), "v".repeat(30)),
    ];
    names.push("x".repeat(300));
    names
}

#[test]
fn derived_names_are_stable() {
    let mut table = String::new();
    for name in names() {
        table.push_str(&format!(
            "name ({} bytes): {name}\n  active-for:  {}\n  lease:       {}\n  label value: {}\n",
            name.len(),
            active_for_name_part(&name),
            lease_name(&name),
            label_value(&name),
        ));
    }
    insta::assert_snapshot!(table);
}
