//! `--config FILE` (or `VECINDEX_CONFIG`): defaults for any flag of any subcommand, from a TOML
//! file. Precedence: the command line, then the environment, then the file, then the built-in
//! default.
//!
//! Nothing here knows a flag by name: the file is checked against the clap command's own
//! arguments, and its values go back through clap as if typed, so a flag someone adds to a
//! subcommand is configurable with no code here. Two passes: a lenient first one (the file may
//! hold a flag the command requires) finds the subcommand, the file and where each value came
//! from; every file value whose flag neither the command line nor the environment set is then
//! appended to argv as `--flag=value`, and the second pass parses that for real.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

/// The id of the `--config` argument (not a key the file itself may set).
const ID: &str = "config";

const LONG_HELP: &str = "\
A TOML file of defaults for any flag: one table per subcommand, keyed by the flag's long name \
(`persist-every-docs`, or `persist_every_docs`; a flag with only a short name by its letter, as \
`k`), and top-level keys for every subcommand that has the flag. A subcommand's table beats the \
top level; the environment (`VECINDEX_TOKEN`, ...) beats the file; the command line beats both. \
Values: a string or number for a flag that takes a value, true or false for a switch, a number \
for a repeatable count (`verbose = 2`), an array for a flag given several times. Relative paths \
are relative to the working directory. Unknown tables or keys are errors.

    embedder = \"hashing\"

    [ingest]
    threads = 2
    quiet = true

    [query]
    k = 10

    [serve]
    addr = \"0.0.0.0:8080\"
    token = \"change-me\"";

/// The global `--config FILE` argument, with the file format in its help.
pub fn arg() -> Arg {
    Arg::new(ID)
        .long(ID)
        .global(true)
        .env("VECINDEX_CONFIG")
        .value_name("FILE")
        .value_parser(clap::value_parser!(PathBuf))
        .help("TOML file of flag defaults: a [SUBCOMMAND] table of long-flag = value (see --help)")
        .long_help(LONG_HELP)
}

/// Why the command line could not be parsed.
#[derive(Debug)]
pub enum Failure {
    /// A usage error (or `--help`, `--version`), to be shown and exited with as clap does.
    Clap(clap::Error),
    /// The configuration file is unreadable or wrong.
    Config(ConfigError),
}

/// What is wrong with a configuration file, and where.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The subcommand's table; `None` for the file as a whole or a top-level key.
    pub table: Option<String>,
    pub key: Option<String>,
    pub kind: ConfigErrorKind,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    Unreadable(std::io::Error),
    /// Not TOML (the parser's message, with line and column).
    Syntax(String),
    /// A table that names no subcommand.
    UnknownTable {
        known: Vec<String>,
    },
    /// A key that names no flag of its table's subcommand (of any subcommand, at the top level).
    UnknownKey {
        known: Vec<String>,
    },
    /// The key names a positional argument, which only the command line gives.
    Positional,
    /// Two keys (`a-b` and `a_b`) name the same flag.
    Twice {
        other: String,
    },
    /// A TOML value of a type the flag cannot take.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A value the flag's parser refused (its message).
    BadValue(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}: ", self.file.display())?;
        match (&self.table, &self.key) {
            (Some(table), Some(key)) => write!(f, "[{table}] {key}: ")?,
            (Some(table), None) => write!(f, "[{table}]: ")?,
            (None, Some(key)) => write!(f, "top-level {key}: ")?,
            (None, None) => {}
        }
        match &self.kind {
            ConfigErrorKind::Unreadable(e) => write!(f, "cannot read it: {e}"),
            ConfigErrorKind::Syntax(message) => write!(f, "not valid TOML: {}", message.trim_end()),
            ConfigErrorKind::UnknownTable { known } => {
                write!(f, "no such subcommand (tables are named after one of: {})", known.join(", "))
            }
            ConfigErrorKind::UnknownKey { known } => write!(f, "unknown key (known: {})", known.join(", ")),
            ConfigErrorKind::Positional => write!(f, "a positional argument: give it on the command line"),
            ConfigErrorKind::Twice { other } => write!(f, "names the same flag as {other}"),
            ConfigErrorKind::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            ConfigErrorKind::BadValue(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ConfigErrorKind::Unreadable(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses `args` (program name first) into `P`, with `--config` added to its command and the
/// file's values filling in what the command line and the environment leave unset.
pub fn parse<P: CommandFactory + FromArgMatches>(args: Vec<OsString>) -> Result<P, Failure> {
    let first = P::command().arg(arg()).ignore_errors(true).try_get_matches_from(&args).map_err(Failure::Clap)?;
    let mut cmd = P::command().arg(arg());
    // Built: global arguments (`--verbose`, `--config`) are then among each subcommand's.
    cmd.build();
    let mut supplied = Vec::new();
    let mut extra = Vec::new();
    if let (Some(path), Some((name, sub_matches))) = (config_path(&first), first.subcommand()) {
        let file = File::read(path)?;
        file.check(&cmd)?;
        if let Some(sub) = cmd.find_subcommand(name) {
            supplied = file.unset_flags(sub, sub_matches)?;
            extra = supplied.iter().flat_map(|s| s.args.iter().cloned()).collect();
        }
    }
    let args = splice(args, extra);
    let mut matches = cmd.try_get_matches_from_mut(&args).map_err(|e| attribute(e, &supplied))?;
    P::from_arg_matches_mut(&mut matches).map_err(|e| Failure::Clap(e.format(&mut cmd)))
}

/// The `--config` path, wherever on the line (or in the environment) it was given.
fn config_path(matches: &ArgMatches) -> Option<&PathBuf> {
    let sub = matches.subcommand().and_then(|(_, m)| m.get_one::<PathBuf>(ID));
    sub.or_else(|| matches.get_one::<PathBuf>(ID))
}

/// `args` with `extra` inserted before a `--` (after which everything is positional), or at the end.
fn splice(mut args: Vec<OsString>, extra: Vec<OsString>) -> Vec<OsString> {
    let at = args.iter().skip(1).position(|a| a == "--").map_or(args.len(), |i| i + 1);
    args.splice(at..at, extra);
    args
}

/// A flag the file set and argv now carries.
struct Supplied {
    file: PathBuf,
    table: Option<String>,
    key: String,
    /// How clap names the flag in its errors' first word: `--addr` or `-k`.
    flag: String,
    values: Vec<String>,
    args: Vec<OsString>,
}

/// A second-pass error about a value the file supplied becomes an error naming the file.
fn attribute(e: clap::Error, supplied: &[Supplied]) -> Failure {
    if !matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
        return Failure::Clap(e);
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return Failure::Clap(e) };
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => Some(value.as_str()),
        _ => None,
    };
    let from_file = supplied.iter().find(|s| {
        let named = arg == &s.flag || arg.starts_with(&format!("{} ", s.flag));
        named && value.is_none_or(|v| s.values.iter().any(|own| own == v))
    });
    let Some(s) = from_file else { return Failure::Clap(e) };
    let rendered = e.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    Failure::Config(ConfigError {
        file: s.file.clone(),
        table: s.table.clone(),
        key: Some(s.key.clone()),
        kind: ConfigErrorKind::BadValue(line.strip_prefix("error: ").unwrap_or(line).to_owned()),
    })
}

/// A parsed configuration file.
struct File {
    path: PathBuf,
    table: toml::Table,
}

impl File {
    fn read(path: &Path) -> Result<File, Failure> {
        let error = |kind| Failure::Config(ConfigError { file: path.to_owned(), table: None, key: None, kind });
        let text = std::fs::read_to_string(path).map_err(|e| error(ConfigErrorKind::Unreadable(e)))?;
        let table = text.parse::<toml::Table>().map_err(|e| error(ConfigErrorKind::Syntax(e.to_string())))?;
        Ok(File { path: path.to_owned(), table })
    }

    fn error(&self, table: Option<&str>, key: Option<&str>, kind: ConfigErrorKind) -> Failure {
        Failure::Config(ConfigError {
            file: self.path.clone(),
            table: table.map(str::to_owned),
            key: key.map(str::to_owned),
            kind,
        })
    }

    /// The top-level keys (not tables), shared by the subcommands.
    fn shared(&self) -> impl Iterator<Item = (&String, &toml::Value)> {
        self.table.iter().filter(|(_, v)| !v.is_table())
    }

    /// Checks the whole file, not just the running subcommand's table: a typo in `[serve]`
    /// shows up on the next `query` rather than when the server is restarted.
    fn check(&self, cmd: &Command) -> Result<(), Failure> {
        for (name, value) in &self.table {
            let Some(table) = value.as_table() else { continue };
            let Some(sub) = subcommands(cmd).find(|s| s.get_name() == name) else {
                let known = subcommands(cmd).map(|s| s.get_name().to_owned()).collect();
                return Err(self.error(Some(name), None, ConfigErrorKind::UnknownTable { known }));
            };
            self.settings(sub, Some(name), table)?;
        }
        for (key, value) in self.shared() {
            // A top-level key must be a flag of some subcommand; it may be a positional
            // argument of others (`index` is `ingest`'s flag and `query`'s positional).
            let (mut flag, mut positional) = (false, false);
            for sub in subcommands(cmd) {
                match lookup(sub, key) {
                    Lookup::Flag(arg) => {
                        args_for(arg, value).map_err(|kind| self.error(None, Some(key), kind))?;
                        flag = true;
                    }
                    Lookup::Positional => positional = true,
                    Lookup::None => {}
                }
            }
            if !flag {
                let mut known: Vec<String> = subcommands(cmd).flat_map(keys).collect();
                known.sort();
                known.dedup();
                let kind = if positional { ConfigErrorKind::Positional } else { ConfigErrorKind::UnknownKey { known } };
                return Err(self.error(None, Some(key), kind));
            }
        }
        Ok(())
    }

    /// A table's keys as `sub`'s flags, by flag id.
    fn settings(&self, sub: &Command, table: Option<&str>, entries: &toml::Table) -> Result<Settings, Failure> {
        let mut out = Settings::new();
        for (key, value) in entries {
            let arg = match lookup(sub, key) {
                Lookup::Flag(arg) => arg,
                Lookup::Positional => return Err(self.error(table, Some(key), ConfigErrorKind::Positional)),
                Lookup::None => {
                    let known = keys(sub).collect();
                    return Err(self.error(table, Some(key), ConfigErrorKind::UnknownKey { known }));
                }
            };
            let setting = self.setting(table, key, arg, value)?;
            if let Some(earlier) = out.insert(arg.get_id().to_string(), setting) {
                return Err(self.error(table, Some(key), ConfigErrorKind::Twice { other: earlier.key }));
            }
        }
        Ok(out)
    }

    /// The argv that gives `arg` the `value` of `key`.
    fn setting(&self, table: Option<&str>, key: &str, arg: &Arg, value: &toml::Value) -> Result<Supplied, Failure> {
        let args = args_for(arg, value).map_err(|kind| self.error(table, Some(key), kind))?;
        let flag = spelling(arg).unwrap_or_default();
        let attached = format!("{flag}=");
        let values = args.iter().filter_map(|a| Some(a.to_str()?.strip_prefix(&attached)?.to_owned())).collect();
        Ok(Supplied {
            file: self.path.clone(),
            table: table.map(str::to_owned),
            key: key.to_owned(),
            flag,
            values,
            args,
        })
    }

    /// The file's flags for subcommand `sub` (its table over the top level) that neither the
    /// command line nor the environment set.
    fn unset_flags(&self, sub: &Command, matches: &ArgMatches) -> Result<Vec<Supplied>, Failure> {
        let name = sub.get_name();
        let mut chosen = Settings::new();
        for (key, value) in self.shared() {
            if let Lookup::Flag(arg) = lookup(sub, key) {
                chosen.insert(arg.get_id().to_string(), self.setting(None, key, arg, value)?);
            }
        }
        if let Some(table) = self.table.get(name).and_then(toml::Value::as_table) {
            chosen.extend(self.settings(sub, Some(name), table)?);
        }
        let given =
            |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        Ok(chosen.into_iter().filter(|(id, _)| !given(id)).map(|(_, setting)| setting).collect())
    }
}

/// Flags the file sets, by argument id.
type Settings = BTreeMap<String, Supplied>;

/// The subcommands a table may name: not the `help` clap adds.
fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|s| s.get_name() != "help")
}

/// What a key names in a subcommand.
enum Lookup<'c> {
    Flag(&'c Arg),
    Positional,
    None,
}

/// The argument `key` names in `sub`: by its long name, else by its id (the long name with
/// underscores, or a short-only flag's letter).
fn lookup<'c>(sub: &'c Command, key: &str) -> Lookup<'c> {
    let by_long = sub.get_arguments().find(|a| a.get_long() == Some(key));
    match by_long.or_else(|| sub.get_arguments().find(|a| a.get_id() == key)) {
        Some(arg) if arg.is_positional() => Lookup::Positional,
        Some(arg) if configurable(arg) => Lookup::Flag(arg),
        _ => Lookup::None,
    }
}

/// Whether the file may set `arg`: a flag that takes values or is a switch or a count (not
/// `--help`, `--version` or `--config` itself).
fn configurable(arg: &Arg) -> bool {
    arg.get_id() != ID
        && matches!(
            arg.get_action(),
            ArgAction::Set | ArgAction::Append | ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
        )
}

/// The keys `sub` takes, as the file spells them.
fn keys(sub: &Command) -> impl Iterator<Item = String> + '_ {
    sub.get_arguments()
        .filter(|a| configurable(a) && !a.is_positional())
        .map(|a| a.get_long().map_or_else(|| a.get_id().to_string(), str::to_owned))
}

/// `--long`, or `-s` for a flag with only a short name.
fn spelling(arg: &Arg) -> Option<String> {
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => Some(format!("--{long}")),
        (None, Some(short)) => Some(format!("-{short}")),
        (None, None) => None,
    }
}

/// The argv that gives `arg` the file's `value`, after checking its TOML type. Values are
/// attached with `=`, so one that starts with `-` is not taken for a flag.
fn args_for(arg: &Arg, value: &toml::Value) -> Result<Vec<OsString>, ConfigErrorKind> {
    let flag = spelling(arg).ok_or(ConfigErrorKind::Positional)?;
    let wrong = |expected| ConfigErrorKind::WrongType { expected, found: value.type_str() };
    let with = |v: &toml::Value| scalar(v).map(|s| OsString::from(format!("{flag}={s}")));
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let on = value.as_bool().ok_or_else(|| wrong("true or false"))?;
            // SetFalse: the flag turns the value off, so giving it means `false`.
            let give = on == matches!(arg.get_action(), ArgAction::SetTrue);
            Ok(if give { vec![flag.into()] } else { Vec::new() })
        }
        ArgAction::Count => {
            let n = value.as_integer().filter(|n| (0..=i64::from(u8::MAX)).contains(n));
            let n = n.ok_or_else(|| wrong("a count from 0 to 255"))?;
            Ok((0..n).map(|_| OsString::from(&flag)).collect())
        }
        ArgAction::Set => with(value).ok_or_else(|| wrong("a string, number or boolean")).map(|a| vec![a]),
        ArgAction::Append => match value.as_array() {
            Some(items) => {
                items.iter().map(|v| with(v).ok_or_else(|| wrong("an array of strings or numbers"))).collect()
            }
            None => with(value).ok_or_else(|| wrong("a value or an array of values")).map(|a| vec![a]),
        },
        _ => Err(ConfigErrorKind::UnknownKey { known: Vec::new() }),
    }
}

/// A TOML scalar as the command line would spell it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[arg(short, long, global = true, action = ArgAction::Count)]
        verbose: u8,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand, Debug, PartialEq)]
    enum Sub {
        Run {
            path: PathBuf,
            #[arg(long)]
            out: PathBuf,
            #[arg(short, default_value_t = 5)]
            k: usize,
            #[arg(long, default_value_t = 1.5)]
            ratio: f64,
            #[arg(long)]
            quiet: bool,
            #[arg(long)]
            tag: Vec<String>,
            #[arg(long, default_value = "x")]
            name: String,
            #[arg(long)]
            max_rows: Option<usize>,
        },
        Other {
            #[arg(long)]
            quiet: bool,
        },
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    fn run(config: &tempfile::NamedTempFile, args: &[&str]) -> Result<Cli, Failure> {
        let mut argv: Vec<OsString> = vec!["prog".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.extend(["--config".into(), config.path().as_os_str().to_owned()]);
        parse::<Cli>(argv)
    }

    fn config_error(result: Result<Cli, Failure>) -> ConfigError {
        match result {
            Err(Failure::Config(e)) => e,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn the_file_fills_what_the_command_line_leaves() {
        let f = file(
            "verbose = 2\n[run]\nout = \"/o\"\nk = 3\nratio = 0.25\nquiet = true\ntag = [\"a\", \"-b\"]\n\
             [other]\nquiet = false\n",
        );
        let cli = run(&f, &["run", "p"]).unwrap();
        assert_eq!(cli.verbose, 2);
        let Sub::Run { path, out, k, ratio, quiet, tag, name, .. } = cli.command else { panic!() };
        assert_eq!((path, out, k, ratio, quiet), ("p".into(), "/o".into(), 3, 0.25, true));
        assert_eq!((tag, name), (vec!["a".to_owned(), "-b".to_owned()], "x".to_owned()));

        let cli = run(&f, &["run", "p", "-k", "9", "--tag", "c", "--out", "/cli", "-v"]).unwrap();
        assert_eq!(cli.verbose, 1, "the command line's count replaces the file's");
        let Sub::Run { out, k, tag, .. } = cli.command else { panic!() };
        assert_eq!((out, k, tag), ("/cli".into(), 9, vec!["c".to_owned()]));
        assert_eq!(run(&f, &["other"]).unwrap().command, Sub::Other { quiet: false });
    }

    #[test]
    fn keys_may_use_underscores_but_not_twice() {
        for key in ["max-rows", "max_rows"] {
            let f = file(&format!("[run]\nout = \"/o\"\nratio = 2\n{key} = 7\n"));
            let Sub::Run { ratio, max_rows, .. } = run(&f, &["run", "p"]).unwrap().command else { panic!() };
            assert_eq!((ratio, max_rows), (2.0, Some(7)), "an integer for a float; {key}");
        }
        let f = file("[run]\nmax-rows = 1\nmax_rows = 2\n");
        let e = config_error(run(&f, &["run", "p", "--out", "o"]));
        assert!(matches!(e.kind, ConfigErrorKind::Twice { .. }), "{e}");
        let f = file("[run]\nout = \"/o\"\n[run.tag]\n");
        let e = config_error(run(&f, &["run", "p"]));
        assert!(e.to_string().contains("found table"), "{e}");
    }

    #[test]
    fn mistakes_name_the_file_the_table_and_the_key() {
        for (text, table, key, says) in [
            ("[run]\nbogus = 1\n", Some("run"), Some("bogus"), "unknown key"),
            ("[other]\nk = 1\n", Some("other"), Some("k"), "unknown key"),
            ("[nope]\n", Some("nope"), None, "no such subcommand"),
            ("[help]\n", Some("help"), None, "no such subcommand"),
            ("bogus = 1\n", None, Some("bogus"), "unknown key"),
            ("[run]\npath = \"p\"\n", Some("run"), Some("path"), "positional"),
            ("[run]\nquiet = \"yes\"\n", Some("run"), Some("quiet"), "expected true or false, found string"),
            ("[run]\nk = [1]\n", Some("run"), Some("k"), "found array"),
            ("verbose = -1\n", None, Some("verbose"), "count"),
            ("[run]\nk = \"many\"\n", Some("run"), Some("k"), "invalid value 'many'"),
            ("[run]\nratio = \"x\"\nout = \"o\"\n", Some("run"), Some("ratio"), "invalid value 'x'"),
            ("[run]\nout = \"o\"\nout_ = 1\n", Some("run"), Some("out_"), "unknown key"),
            ("[run]\nhelp = true\n", Some("run"), Some("help"), "unknown key"),
            ("[run]\nconfig = \"x\"\n", Some("run"), Some("config"), "unknown key"),
            ("[run\n", None, None, "not valid TOML"),
        ] {
            let f = file(text);
            let e = config_error(run(&f, &["run", "p", "--out", "o"]));
            assert_eq!((e.table.as_deref(), e.key.as_deref()), (table, key), "{text}: {e}");
            let message = e.to_string();
            assert!(message.contains(&f.path().display().to_string()) && message.contains(says), "{text}: {message}");
        }
        let f = file("[run]\nratio = 1\nRATIO = 2\n");
        assert!(config_error(run(&f, &["run", "p", "--out", "o"])).to_string().contains("[run] RATIO: unknown key"));
    }

    #[test]
    fn a_top_level_key_applies_where_it_is_a_flag() {
        // `out` is `run`'s flag; `other` has no such flag and ignores it.
        let f = file("out = \"/top\"\nquiet = true\n[run]\nquiet = false\n");
        let Sub::Run { out, quiet, .. } = run(&f, &["run", "p"]).unwrap().command else { panic!() };
        assert_eq!((out, quiet), ("/top".into(), false), "the table beats the top level");
        assert_eq!(run(&f, &["other"]).unwrap().command, Sub::Other { quiet: true });
        let e = config_error(run(&file("path = \"p\"\n"), &["other"]));
        assert!(matches!(e.kind, ConfigErrorKind::Positional), "{e}");
    }

    #[test]
    fn a_missing_file_and_usage_errors() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let e = parse::<Cli>(argv(&["prog", "--config", "/no/such/file.toml", "run", "p", "--out", "o"]));
        assert!(matches!(config_error(e).kind, ConfigErrorKind::Unreadable(_)));
        // Without a file, usage errors are clap's, as before.
        assert!(matches!(parse::<Cli>(argv(&["prog", "run", "p"])), Err(Failure::Clap(_))));
        let f = file("[run]\nout = \"o\"\n");
        assert!(matches!(run(&f, &["run", "p", "--nonsense"]), Err(Failure::Clap(_))));
        let e = run(&f, &["run", "p", "-k", "many"]);
        assert!(matches!(e, Err(Failure::Clap(_))), "a bad value on the command line is not the file's");
    }

    #[test]
    fn values_go_before_a_double_dash() {
        let f = file("[run]\nout = \"o\"\nk = 4\n");
        let mut argv: Vec<OsString> = vec!["prog".into(), "--config".into(), f.path().into()];
        argv.extend(["run", "--", "-p"].map(OsString::from));
        let Sub::Run { path, k, .. } = parse::<Cli>(argv).unwrap().command else { panic!() };
        assert_eq!((path, k), ("-p".into(), 4));
    }
}
