"""One grammar for every command: each option explained with its default, the shared options
spelled and parsed the same way, examples at the end of every command's help."""

import argparse

import pytest

from effnet_lib.bench.timing import XLA
from effnet_lib.cli import build_parser
from effnet_lib.common.precision import PRECISION_NAMES


def commands(parser=None, path=()):
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join(path + (name,)), child
                yield from commands(child, path + (name,))


ALL = dict(commands())


def options(parser):
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_the_walk_finds_every_command():
    assert {"train", "validate", "finetune", "benchmark", "data make-shapes", "export"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_option_has_help_and_every_command_ends_with_examples(name, capsys):
    parser = ALL[name]
    bare = [a.option_strings[0] if a.option_strings else a.dest for a in options(parser) if not a.help]
    assert not bare, f"effnet {name}: no help for {bare}"
    text = parser.format_help()
    assert "examples:\n  effnet " in text, f"effnet {name} --help has no examples"
    for action in options(parser):  # every default that matters is shown
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in (parser._get_formatter()._get_help_string(action)), action.option_strings


def test_precision_is_spelled_and_parsed_the_same_everywhere():
    found = {name: a for name, p in ALL.items() for a in options(p) if a.dest.endswith("precision")}
    assert {"train", "benchmark", "profile"} <= set(found)
    for name, action in found.items():
        assert tuple(action.choices) == tuple(PRECISION_NAMES), name
        assert "16.32" in action.help and "bf16" in action.help, name
    parser = build_parser()
    case_precision = parser.parse_args(["train", "B0-G1-GN-Native_16IPU_2x8", "--precision", "16"])
    assert vars(case_precision)["case.precision"] == "16.32"  # the short form, mapped
    with pytest.raises(SystemExit):
        parser.parse_args(["benchmark", "B0", "--precision", "fp16"])


def test_xla_means_one_thing_everywhere():
    found = {name: a for name, p in ALL.items() for a in options(p) if a.dest == "xla"}
    assert {"benchmark", "memory", "benchmark-groups"} <= set(found)
    parser = build_parser()
    for name in found:
        words = name.split() + (["B0"] if name != "benchmark-groups" else [])
        assert parser.parse_args(words + ["--xla", "on"]).xla in ("on", ["on"])
        with pytest.raises(SystemExit):
            parser.parse_args(words + ["--xla", "maybe"])
    assert parser.parse_args(["benchmark-groups", "--xla", "off,auto"]).xla == ["off", "auto"]
    assert set(XLA) == {"auto", "on", "off"}


def test_output_folders_and_checkpoints_have_one_name():
    parser = build_parser()
    for argv in (["export", "B0-G1-BN", "--output-dir", "/tmp/x"],
                 ["data", "make-shapes", "--output-dir", "/tmp/x"],
                 ["export", "B0-G1-BN", "--out", "/tmp/x"]):  # the old spelling still works
        assert parser.parse_args(argv).out == "/tmp/x"
    for argv in (["finetune", "--checkpoint", "runs/x", "--image-size", "64"],
                 ["finetune", "--init-path", "runs/x", "--image-size", "64"]):
        assert parser.parse_args(argv).init_path == "runs/x"
    assert parser.parse_args(["validate", "--checkpoint", "runs/x"]).checkpoint == "runs/x"
    folders = {name: [s for a in options(p) for s in a.option_strings if "out" in s]
               for name, p in ALL.items()}
    for name, spellings in folders.items():
        assert not [s for s in spellings if s not in ("--output-dir", "--output", "--out")], name


@pytest.mark.parametrize("argv, dest", [
    (["finetune", "--checkpoint", "r", "--image-size", "64", "--variable-filter"], "variable_filter"),
    (["profile", "B0-G16-GN-Native_16IPU_2x8", "--stages", "--splits"], "splits"),
    (["train", "B0-G16-GN-Native_16IPU_2x8", "--pipeline-splits"], "case.pipeline_splits"),
])
def test_lists_are_comma_separated_everywhere(argv, dest):
    parser = build_parser()
    for spelling in (["block3b,block5a"], ["block3b", "block5a"]):  # spaces still accepted
        assert vars(parser.parse_args(argv + spelling))[dest] == ["block3b", "block5a"]


@pytest.mark.subprocess
def test_no_command_prints_tensorflows_start_up_noise(tmp_path):
    """`effnet data ...` printed TensorFlow's banners where the other commands did not."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "effnet_lib.cli", "data", "make-shapes",
                          "--output-dir", str(tmp_path / "s"), "--image-size", "32", "--train", "20",
                          "--val", "10", "--classes", "2", "--tfrecords"],  # --tfrecords: imports TF
                         capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    noise = [line for line in run.stderr.splitlines()
             if "cpu_feature_guard" in line or "oneDNN" in line or "absl::InitializeLog" in line]
    assert not noise, noise
