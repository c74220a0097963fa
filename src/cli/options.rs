//! The evaluation options as command-line flags, generated from the core's option table: each
//! option the stream accepts becomes `--name-with-dashes VALUE`, with the table's docs as its
//! help and the table's parsing and check as its value parser. Adding an option to the table adds
//! its flag here with no change to this file.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use prefeval_core::pipeline::options::{Door, Kind, OptionDef, OptionSettings, Value};

/// The option flags given, in table order; none given leaves every option at its default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionFlags(pub OptionSettings);

/// `include_pairs` → `include-pairs`. clap keeps flag names as `&'static str`; the table is
/// static and the command is built once a process, so the few bytes are leaked once.
fn flag_name(def: &OptionDef) -> &'static str {
    Box::leak(def.name.replace('_', "-").into_boxed_str())
}

fn arg_of(def: &'static OptionDef) -> Arg {
    let flag = flag_name(def);
    let value_parser = move |text: &str| -> Result<Value, String> {
        let value = def.parse_text(text, def.name).map_err(|error| error.message)?;
        def.check(value.clone(), def.name).map_err(|error| error.message)?;
        Ok(value)
    };
    let arg = Arg::new(def.name)
        .long(flag)
        .help(def.doc)
        .value_name(def.kind.value_name())
        .action(ArgAction::Set)
        .value_parser(value_parser);
    match def.kind {
        // `--include-pairs` alone means true; `--include-pairs=false` turns it off.
        Kind::Bool => arg.num_args(0..=1).require_equals(true).default_missing_value("true"),
        _ => arg,
    }
}

/// The option flags of `prefeval compare`: the compare stream's query parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareFlags(pub OptionSettings);

fn augment(cmd: Command, door: Door) -> Command {
    OptionDef::of(door).fold(cmd, |cmd, def| cmd.arg(arg_of(def)))
}

fn settings_of(matches: &ArgMatches, door: Door) -> OptionSettings {
    let mut settings = OptionSettings::default();
    for def in OptionDef::of(door) {
        if let Some(value) = matches.get_one::<Value>(def.name) {
            settings.push(def, value.clone());
        }
    }
    settings
}

impl Args for CompareFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, Door::CompareStream)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for CompareFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(CompareFlags(settings_of(matches, Door::CompareStream)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for OptionFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, Door::Stream)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for OptionFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(OptionFlags(settings_of(matches, Door::Stream)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// `--confidence` of a subcommand that takes no other option (merge), read by the table's entry.
pub fn parse_confidence(text: &str) -> Result<f64, String> {
    let def = OptionDef::find(Door::Stream, "confidence").ok_or("no confidence option")?;
    match def.parse_text(text, def.name).map_err(|error| error.message)? {
        Value::Number(confidence) => {
            def.check(Value::Number(confidence), def.name).map_err(|error| error.message)?;
            Ok(confidence)
        }
        _ => Err("expected a number".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Action, Cli};
    use prefeval_core::pipeline::Options;
    use prefeval_core::pipeline::options::{Door, OptionDef};

    fn eval_options(args: &[&str]) -> Result<Options, String> {
        let cli = Cli::try_parse_from(args).map_err(|error| error.to_string())?;
        let Action::Eval(eval) = cli.into_action() else { return Err("not eval".into()) };
        eval.options.0.resolve(Options::default(), "").map_err(|error| error.message)
    }

    #[test]
    fn every_stream_option_is_a_flag() {
        let help = Cli::try_parse_from(["prefeval", "eval", "--help"]).expect_err("help exits").to_string();
        for def in OptionDef::of(Door::Stream) {
            assert!(help.contains(&format!("--{}", def.name.replace('_', "-"))), "no flag for {}", def.name);
            assert!(help.contains(def.doc.split_whitespace().next().unwrap_or("")), "no docs for {}", def.name);
        }
    }

    #[test]
    fn flags_fill_options_through_the_table() {
        let options =
            eval_options(&["prefeval", "eval", "--beta", "2", "--include-pairs=false", "--format", "pairs", "f"])
                .expect("valid flags");
        assert_eq!(options.math.beta, 2.0);
        assert!(!options.math.include_pairs);
        assert_eq!(options.format.name(), "pairs");
        let options = eval_options(&["prefeval", "eval", "--include-pair-ids", "f"]).expect("a bare bool flag");
        assert!(options.include_pair_ids);
        let error = eval_options(&["prefeval", "eval", "--beta", "0", "f"]).expect_err("beta 0");
        assert!(error.contains("beta must be a finite number > 0"), "{error}");
        let error = eval_options(&["prefeval", "eval", "--normalization", "mean", "f"]).expect_err("unknown name");
        assert!(error.contains("expected one of `ordered_pairs`, `comparisons`, `sum`"), "{error}");
    }
}
