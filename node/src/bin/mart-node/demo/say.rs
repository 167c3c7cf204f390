//! How the demo talks: numbered steps, details under them, and the closing list of
//! commands, wrapped for an 88-column terminal.
//!
//! It must never print a figure it was not handed: formatting only.

/// Width the demo wraps its text to.
const WIDTH: usize = 88;
/// Indent of a step's text under its label.
const INDENT: usize = 18;

pub fn title() {
    println!("NTT Mart sync demo: a provincial hub in Kupang and two district outlets,");
    println!(
        "TTU (Kefamenanu) and Sikka (Maumere), as three mart-node processes on this machine\n"
    );
}

/// A numbered step of the story.
pub fn step(n: u32, label: &str, text: &str) {
    let head = format!("[{n}] {label}");
    print_wrapped(&format!("{head:<INDENT$}"), text);
}

/// More about the current step.
pub fn detail(text: &str) {
    print_wrapped(&" ".repeat(INDENT), text);
}

/// The closing list: each command, then what it shows.
pub fn explore(commands: &[(String, &str)]) {
    println!("\nThe nodes keep running. Explore them:\n");
    for (command, what) in commands {
        println!("  # {what}");
        println!("  {command}");
    }
    println!("\nCtrl-C stops the demo.");
}

/// How long ago a node's timestamp was, on this machine's clock.
pub fn ago(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "never".into();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    format!("{:.1} s ago", (now - unix_ms).max(0) as f64 / 1000.0)
}

fn print_wrapped(first: &str, text: &str) {
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            println!("{line}");
            line = " ".repeat(INDENT);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    println!("{line}");
}
