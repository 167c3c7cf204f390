//! `mart-node` built with the `fault-injection` feature, for the tests only: the
//! same program, under its own name so that building it never replaces the
//! product's binary (see `mart_node::fault_injection`).

#[path = "mart-node/main.rs"]
mod mart_node_main;

fn main() -> std::process::ExitCode {
    mart_node_main::main()
}
