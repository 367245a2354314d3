//! `schema.graphql` is the exported SDL that clients and reviewers read; it must match the code.

#[test]
fn the_committed_schema_file_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the top of the project");
    assert!(
        committed == provider_desk::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -- export-schema` and commit the result"
    );
}
