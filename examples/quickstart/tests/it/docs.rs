//! The first example of the `countersign` and `countersign-axum` crate docs is this
//! example's `src/main.rs`, line for line: what a reader copies is what the tests run.

use std::path::Path;

/// The first code block of a crate's docs (the `//!` lines of its `lib.rs`).
fn first_example(lib_rs: &str) -> String {
    let docs: Vec<&str> = lib_rs
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    let start = docs
        .iter()
        .position(|line| line.starts_with("```"))
        .expect("the crate docs have an example");
    let end = start
        + 1
        + docs[start + 1..]
            .iter()
            .position(|line| *line == "```")
            .expect("the example ends");
    let mut code = docs[start + 1..end].join("\n");
    code.push('\n');
    code
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_crate_docs_open_with_this_program() {
    let program = read("src/main.rs");
    for lib in [
        "../../crates/countersign/src/lib.rs",
        "../../crates/countersign-axum/src/lib.rs",
    ] {
        let example = first_example(&read(lib));
        if example != program {
            let first_difference = example
                .lines()
                .zip(program.lines())
                .position(|(a, b)| a != b)
                .map_or(example.lines().count().min(program.lines().count()), |n| n);
            panic!(
                "the first example of {lib} is not examples/quickstart/src/main.rs \
                 (first difference at line {}): copy the program into the docs",
                first_difference + 1
            );
        }
    }
}

#[test]
fn it_fits_in_sixty_lines() {
    assert!(read("src/main.rs").lines().count() <= 60);
}
