//! Crosswalk conflicts: traffic entering from a leg crosses that leg's crosswalk before it
//! turns, so even a permissive turn never shares green with the walk across its own entry
//! leg. It may (yielding) share green with the walk across the leg it leaves by.

use intersections::load::network_from_str;

fn single() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/networks/single.toml")).unwrap()
}

#[test]
fn permissive_turns_conflict_with_the_crosswalk_of_their_entry_leg() {
    let text = single()
        .replace(
            "id = \"EW_left\"\nkind = \"vehicle\"\nmovements = [\"E_left\", \"W_left\"]",
            "id = \"EW_left\"\nkind = \"vehicle\"\nmovements = [\"E_left\", \"W_left\"]\nprotection = \"permissive\"",
        )
        .replace("groups = [\"EW_left\"]", "groups = [\"EW_left\", \"P_east\"]");
    let err = network_from_str("t.toml", &text).unwrap_err().to_string();
    assert!(
        err.contains("signal groups EW_left and P_east conflict"),
        "{err}"
    );
}

#[test]
fn permissive_turns_yield_to_the_crosswalk_of_their_exit_leg() {
    // E_left leaves by the south leg; W_left by the north leg. Their permissive group may run
    // with the walks across those legs (the turning drivers yield), not with the others.
    let net = network_from_str(
        "t.toml",
        &single().replace(
            "id = \"EW_left\"\nkind = \"vehicle\"\nmovements = [\"E_left\", \"W_left\"]",
            "id = \"EW_left\"\nkind = \"vehicle\"\nmovements = [\"E_left\", \"W_left\"]\nprotection = \"permissive\"",
        ),
    )
    .unwrap();
    let ix = &net.intersections[0];
    let g = |id: &str| ix.group(id).unwrap();
    assert!(!ix.conflict(g("EW_left"), g("P_south")));
    assert!(!ix.conflict(g("EW_left"), g("P_north")));
    assert!(ix.conflict(g("EW_left"), g("P_east")));
    assert!(ix.conflict(g("EW_left"), g("P_west")));
}
