//! `vezasock completions SHELL` and `vezasock man`: shell completions and man pages generated
//! from the clap definitions, so they always list the flags the binary takes.
//!
//! The subcommands' arguments are deferred (`#[command(defer = true)]` in `cli/mod.rs`): a
//! generator walking an unbuilt `Cli::command()` would see subcommands without any flag.
//! `full_command` builds the whole tree first.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::exit::Exit;
use super::output;
use super::Cli;

// Arguments of `vezasock completions` (a plain comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

// Arguments of `vezasock man` (a plain comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write vezasock.1 and one page per subcommand (vezasock-switch.1, …) into DIR instead of
    /// printing vezasock.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The whole command tree with every deferred subcommand's arguments built.
pub fn full_command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// The tree the man pages describe: `vezasock help X` needs no page of its own.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut cmd = full_command();
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    script
}

/// The top-level man page (roff).
pub fn man_page() -> Result<Vec<u8>, std::io::Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(man_command()).render(&mut page)?;
    Ok(page)
}

/// Runs `vezasock completions`.
pub fn run_completions(args: &CompletionsArgs) -> ExitCode {
    output::bytes(&completion_script(args.shell));
    Exit::Ok.into()
}

/// Runs `vezasock man`.
pub fn run_man(args: &ManArgs) -> ExitCode {
    match &args.out {
        None => match man_page() {
            Ok(page) => {
                output::bytes(&page);
                Exit::Ok.into()
            }
            Err(e) => {
                eprintln!("vezasock man: {e}");
                Exit::Refused.into()
            }
        },
        Some(dir) => match std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(man_command(), dir))
        {
            Ok(()) => {
                output::line(&format!("wrote the man pages into {}", dir.display()));
                Exit::Ok.into()
            }
            Err(e) => {
                eprintln!("vezasock man: cannot write into {}: {e}", dir.display());
                Exit::Refused.into()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags of deferred subcommands appear: the generators saw the built tree.
    #[test]
    fn completions_list_the_subcommands_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion_script(shell)).unwrap_or_default();
            for word in [
                "switch",
                "--drain-timeout",
                "--wait-healthy",
                "--kill-sessions",
                "--lock-timeout",
                "--config",
            ] {
                let word = if shell == Shell::Fish {
                    word.trim_start_matches("--")
                } else {
                    word
                };
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn man_pages_cover_every_subcommand_with_its_flags() {
        let page = String::from_utf8(man_page().unwrap_or_default()).unwrap_or_default();
        assert!(
            page.starts_with(".ie"),
            "roff: {}",
            &page[..page.len().min(80)]
        );
        assert!(page.contains("switch"), "{page}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        clap_mangen::generate_to(man_command(), dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let switch = std::fs::read_to_string(dir.path().join("vezasock-switch.1"))
            .unwrap_or_else(|e| panic!("vezasock-switch.1: {e}"));
        assert!(switch.contains("drain\\-timeout"), "{switch}");
        assert!(switch.contains("at most 7d"), "{switch}");
        let pages: Vec<String> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        // vezasock.1 plus one page per subcommand (nested ones too: `cert update`), and none
        // for `help`.
        fn count(c: &clap::Command) -> usize {
            c.get_subcommands()
                .filter(|s| s.get_name() != "help")
                .map(|s| 1 + count(s))
                .sum()
        }
        let subcommands = count(&full_command());
        assert_eq!(pages.len(), subcommands + 1, "{pages:?}");
        assert!(!pages.iter().any(|p| p.contains("help")), "{pages:?}");
    }
}
