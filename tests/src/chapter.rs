//! Runs the shell commands of a guide chapter (`docs/src/*.md`) as a reader would type them, so
//! that every command the chapter shows is checked by a test.
//!
//! Each ```` ```sh ```` block runs in `bash -euo pipefail`, in the folder and with the exported
//! variables the blocks before it left (`cd` and `export` carry over, as in one terminal). An
//! HTML comment just before a block (invisible in the rendered book) says more of it:
//!
//! - `<!-- test: expect "TEXT" "MORE" -->`: the block's output holds each text;
//! - `<!-- test: background ready "TEXT" -->`: the block keeps running (a second terminal); the
//!   next blocks run once its output holds the text; it is stopped when the run is dropped.
//!
//! ```` ```text ```` blocks (what a command prints) are not run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A shell block of a chapter and what its test comment says of it.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// The commands.
    pub code: String,
    /// Texts its output must hold.
    pub expect: Vec<String>,
    /// `Some(text)`: runs in the background; ready once its output holds the text.
    pub background: Option<String>,
}

/// The ```` ```sh ```` blocks of a chapter, in order.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut pending = Block::default();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(directive) = trimmed.strip_prefix("<!-- test:").and_then(|d| d.strip_suffix("-->")) {
            let (words, texts) = quoted(directive);
            match words.as_str() {
                "expect" => pending.expect.extend(texts),
                "background ready" => pending.background = texts.into_iter().next(),
                other => panic!("unknown test directive {other:?} in {line:?}"),
            }
        } else if trimmed == "```sh" {
            let mut code = String::new();
            for body in lines.by_ref() {
                if body.trim() == "```" {
                    break;
                }
                code.push_str(body);
                code.push('\n');
            }
            pending.code = code;
            found.push(std::mem::take(&mut pending));
        } else if trimmed.starts_with("```") {
            // Another language: skipped whole (its lines are not directives).
            for body in lines.by_ref() {
                if body.trim() == "```" {
                    break;
                }
            }
            assert!(
                pending.code.is_empty() && pending.expect.is_empty() && pending.background.is_none(),
                "a test directive before a {trimmed} block"
            );
        }
    }
    found
}

/// The words before the first quote, and the quoted texts (`\"` is a quote inside one).
fn quoted(directive: &str) -> (String, Vec<String>) {
    let words = directive.split('"').next().unwrap_or("").trim().to_string();
    let (mut texts, mut current, mut inside, mut chars) =
        (Vec::new(), String::new(), false, directive.chars());
    while let Some(c) = chars.next() {
        match (c, inside) {
            ('\\', true) => current.extend(chars.next()),
            ('"', true) => texts.push(std::mem::take(&mut current)),
            ('"', false) => {}
            (c, true) => current.push(c),
            (_, false) => continue,
        }
        if c == '"' {
            inside = !inside;
        }
    }
    (words, texts)
}

/// What a block printed.
#[derive(Debug)]
pub struct Ran {
    /// The block's commands.
    pub code: String,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// A chapter being run: what each block printed, and the background blocks still running.
pub struct ChapterRun {
    /// Every block run, in order (a background block's output as of when it was ready).
    pub ran: Vec<Ran>,
    background: Vec<Child>,
}

impl ChapterRun {
    /// The output of the first block whose commands contain `needle`.
    pub fn output_of(&self, needle: &str) -> &Ran {
        self.ran
            .iter()
            .find(|r| r.code.contains(needle))
            .unwrap_or_else(|| panic!("no block runs {needle:?}"))
    }
}

impl Drop for ChapterRun {
    fn drop(&mut self) {
        for child in &mut self.background {
            // The block's whole process group (cargo run and what it started).
            let _ = Command::new("kill").args(["-s", "TERM", "--"]).arg(format!("-{}", child.id())).status();
            let _ = child.wait();
        }
    }
}

/// Runs the chapter at `path` (relative to the repository) in `dir`, with `env` on top of this
/// process's environment; fails the test at the first block that fails or lacks an expected text.
pub fn run(path: &str, dir: &Path, env: &[(&str, String)]) -> ChapterRun {
    let markdown = std::fs::read_to_string(crate::repo().join(path)).expect("the chapter");
    let state = dir.join(".chapter-state.sh");
    std::fs::write(&state, format!("cd {}\n", quote(dir))).expect("the state file");
    let mut run = ChapterRun { ran: Vec::new(), background: Vec::new() };
    for (i, block) in blocks(&markdown).into_iter().enumerate() {
        // The state of the blocks before (folder, exported variables), then this block, then the
        // state it leaves for the next ones.
        let script = format!(
            "source {state}\n{code}\n{{ export -p | grep -v '^declare -[a-z]*r'; echo \"cd $(printf %q \"$PWD\")\"; }} > {state}.next\n",
            state = quote(&state),
            code = block.code,
        );
        let mut command = Command::new("bash");
        command.args(["-euo", "pipefail", "-c", &script]).current_dir(dir);
        for (key, value) in env {
            command.env(key, value);
        }
        let label = format!("{path}, block {} ({})", i + 1, block.code.lines().next().unwrap_or(""));
        if let Some(ready) = &block.background {
            let log = dir.join(format!(".chapter-block-{i}.log"));
            let file = std::fs::File::create(&log).expect("the block's log");
            command.stdout(file.try_clone().expect("the log")).stderr(file).stdin(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            // Held by the run from the start, so that a block that never gets ready is still
            // stopped when the failing test drops the run.
            run.background.push(command.spawn().expect("bash runs"));
            let child = run.background.last_mut().expect("just pushed");
            let start = Instant::now();
            let printed = loop {
                let printed = std::fs::read_to_string(&log).unwrap_or_default();
                if printed.contains(ready.as_str()) {
                    break printed;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{label} ended ({status}) before printing {ready:?}:\n{printed}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(600),
                    "{label} never printed {ready:?}:\n{printed}"
                );
                std::thread::sleep(Duration::from_millis(200));
            };
            check(&label, &block, &printed);
            run.ran.push(Ran { code: block.code, stdout: printed, stderr: String::new() });
            continue;
        }
        let out = command.output().expect("bash runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "{label} failed ({}):\n{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status,
            block.code
        );
        check(&label, &block, &format!("{stdout}{stderr}"));
        std::fs::rename(state.with_extension("sh.next"), &state).expect("the block's state");
        run.ran.push(Ran { code: block.code, stdout, stderr });
    }
    run
}

fn check(label: &str, block: &Block, printed: &str) {
    for text in &block.expect {
        assert!(printed.contains(text.as_str()), "{label}: {text:?} not in its output:\n{printed}");
    }
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The environment a chapter's commands run in: HOME in `dir` (kubectl's cache), cargo and
/// rustup where they are, `KRUST` the repository, `TMPDIR` in `dir`, a `USER`.
pub fn reader_env(dir: &Path) -> Vec<(&'static str, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{home}/.rustup"));
    let tmp: PathBuf = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("the chapter's TMPDIR");
    vec![
        ("HOME", dir.display().to_string()),
        ("CARGO_HOME", cargo_home),
        ("RUSTUP_HOME", rustup_home),
        ("KRUST", crate::repo().display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        // A login shell has it (cargo-generate names the author from it when git does not).
        ("USER", std::env::var("USER").unwrap_or_else(|_| "reader".into())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_their_directives() {
        let md = "text\n<!-- test: expect \"a b\" \"c=\\\"d\\\"\" -->\n```sh\necho a b c\n```\n```text\n<!-- test: expect \"x\" -->\n```\n<!-- test: background ready \"up\" -->\n```sh\nserve\n```\n";
        let found = blocks(md);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].code, "echo a b c\n");
        assert_eq!(found[0].expect, ["a b", "c=\"d\""]);
        assert_eq!(found[1].background.as_deref(), Some("up"));
        assert!(found[1].expect.is_empty());
    }
}
