"""Presets, config files and their precedence: preset < file < flags."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from samplerbench.cli import build_parser, config_from_args
from samplerbench.config import LEGACY_KEYS, PRESETS, RunConfig, SamplingConfig, build_config, load_config_file
from samplerbench.core.errors import UserError
from samplerbench.datasets import dataset_options
from samplerbench.datasets.synthetic import SyntheticConfig
from samplerbench.datasets.ucf101 import UCF101Options
from samplerbench.tables import chosen_tables


def test_every_preset_builds():
    for name in PRESETS:
        cfg = build_config(name)
        sampling = cfg.sampling
        assert cfg.preset == name and sampling.main_budget in sampling.budgets
        assert max(sampling.budgets) <= cfg.data.frames
        for options in cfg.data.options.values():
            dataset_options("synthetic", options)  # the presets' synthetic datasets are valid


def test_toml_and_yaml_files(tmp_path):
    toml = ('preset = "tiny"\n[sampling]\nbudgets = [2, 3]\n[recognizer]\nlr = 0.5\n[data]\ntrain-views = 3\n'
            '[data.options.synthetic]\nnum_classes = 3\n')
    (tmp_path / "a.toml").write_text(toml)
    cfg = build_config(file_values=load_config_file(tmp_path / "a.toml"))
    assert cfg.preset == "tiny" and cfg.sampling.budgets == (2, 3) and cfg.recognizer.lr == 0.5
    assert cfg.data.train_views == 3 and cfg.data.frames == PRESETS["tiny"]["data"]["frames"]
    assert cfg.recognizer.epochs == PRESETS["tiny"]["recognizer"]["epochs"]  # a table merges field by field
    assert cfg.data.options["synthetic"] == {**PRESETS["tiny"]["data"]["options"]["synthetic"], "num_classes": 3}
    (tmp_path / "b.yaml").write_text("data: {frames: 12}\nsampling: {samplers: [uniform, nsnet]}\n")
    cfg = build_config(file_values=load_config_file(tmp_path / "b.yaml"))
    assert cfg.preset == "default" and cfg.data.frames == 12 and cfg.sampling.samplers == ("uniform", "nsnet")


FLAT = """preset = "tiny"
dataset = "ucf101"
data_root = "videos"
split = 2
classes = "classInd.txt"
frames = 6
budgets = [1, 3]
main_budget = 3
rec-epochs = 2
rec_tsn = true
fem_res = 24
sampler_epochs = 5
tables = ["main", "fem"]
table_fem_archs = ["mobilenet_v2"]
table_rec_variants = [["resnet18", true]]
throughput_iters = 1
bootstrap = 30
export_predictions = true
[weights]
fem = "fem.pt"
[synthetic]
num_classes = 3
[sampler_options.nsnet]
d = 64
"""
NESTED = """preset = "tiny"
[data]
dataset = "ucf101"
root = "videos"
frames = 6
[data.options.ucf101]
split = 2
classes = "classInd.txt"
[data.options.synthetic]
num_classes = 3
[recognizer]
epochs = 2
tsn = true
weights = "none"
[fem]
res = 24
weights = "fem.pt"
[sampling]
budgets = [1, 3]
main_budget = 3
epochs = 5
[sampling.options.nsnet]
d = 64
[report]
tables = ["main", "fem"]
fem_archs = ["mobilenet_v2"]
recognizer_variants = [["resnet18", true]]
bootstrap = 30
export_predictions = true
[cost]
iters = 1
"""


def test_an_old_flat_config_file_loads_to_the_nested_config(tmp_path):
    """Every flat key of the config before the nesting (LEGACY_KEYS, weights, the dataset options) lands where
    its nested form would put it."""
    (tmp_path / "flat.toml").write_text(FLAT)
    (tmp_path / "nested.toml").write_text(NESTED)
    flat = build_config(file_values=load_config_file(tmp_path / "flat.toml"))
    assert flat == build_config(file_values=load_config_file(tmp_path / "nested.toml"))
    assert dataset_options("ucf101", flat.data.options["ucf101"]) == UCF101Options(split=2, classes="classInd.txt")


def test_readme_config_file_example_loads(tmp_path):
    """The "Config files" example of docs/command-line.md is a valid file, and means what its comments say."""
    readme = (Path(__file__).resolve().parents[1] / "docs" / "command-line.md").read_text()
    block = re.search(r"<!-- example:config-file -->\s*```toml\n(.*?)```", readme, re.S)
    assert block, "docs/command-line.md lost its config-file example"
    (tmp_path / "example.toml").write_text(block.group(1))
    cfg = config_from_args(build_parser().parse_args(["--config", str(tmp_path / "example.toml"), "--device", "cpu"]))
    assert (cfg.seed, cfg.data.frames, cfg.sampling.main_budget, cfg.report.tables) == (1, 8, 2, ("main", "fem"))
    assert cfg.sampling.options == {"nsnet": {"d": 64}} and cfg.cost.iters == 2


def test_every_old_key_has_a_place_in_the_nested_config():
    cfg = RunConfig()
    for flat, path in LEGACY_KEYS.items():
        part, field = path.split(".")[:2]
        assert hasattr(getattr(cfg, part), field), flat


def test_an_old_run_json_loads_to_the_same_run(tmp_path):
    """A run.json written before the nesting (its flat config, every field present) repeats that run."""
    old = {"preset": "tiny", "dataset": "synthetic", "data_root": None, "annotations": None, "lenient": False,
           "classes": None, "train_list": None, "val_list": None, "split": 1, "samplers": [], "seed": 3,
           "device": "cpu", "dtype": "float32", "weights": {}, "frames": 8, "budgets": [2, 4], "main_budget": 2,
           "short_side": 40, "rec_res": 32, "fem_res": 32, "train_views": 1, "workers": 2, "rec_arch": "resnet18",
           "rec_tsn": False, "rec_epochs": 4, "rec_lr": 0.005, "rec_batch": 32,
           "fem_arch": "mobilenet_v2", "fem_epochs": 3, "fem_lr": 0.02, "fem_batch": 64, "sampler_epochs": 30,
           "sampler_batch": 64, "sampler_lr": 0.01, "sampler_options": {}, "aggregation": "mean_softmax",
           "tables": ["main", "guiding", "fusion", "fem", "recognizer", "saliency"],
           "table_fem_archs": ["mobilenet_v2"], "table_rec_variants": [["resnet18", False]],
           "throughput_batch": 8, "throughput_iters": 2, "compile": False, "remeasure": False, "bootstrap": 200,
           "export_predictions": False,
           "synthetic": {**dataclasses.asdict(SyntheticConfig(num_classes=4, train_per_class=10, val_per_class=6,
                                                              min_frames=6, max_frames=40, width=64, height=48))}}
    (tmp_path / "run.json").write_text(json.dumps({"config": old, "seed": 3}))
    cfg = build_config(file_values=load_config_file(tmp_path / "run.json"))
    # its sampler_batch and sampler_lr set every sampler's, as they did then (now each has its own schedule)
    sampling = dataclasses.replace(build_config("tiny").sampling, batch=64, lr=0.01)
    # it lists every table by name, as "all" was then; now the default () says so
    report = dataclasses.replace(build_config("tiny").report, tables=tuple(old["tables"]))
    assert chosen_tables(cfg) == chosen_tables(build_config("tiny"))
    assert cfg == dataclasses.replace(build_config("tiny", seed=3, workers=2), data=dataclasses.replace(
        cfg.data, options={"synthetic": old["synthetic"]}), sampling=sampling, report=report)
    same = dataset_options("synthetic", build_config("tiny").data.options["synthetic"])
    assert dataset_options("synthetic", cfg.data.options["synthetic"]) == same  # the same generated videos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rec_epochs = 2\n[recognizer]\nepochs = 3", "rec_epochs and [recognizer] epochs both set recognizer.epochs"),
        ("weights = 3", "weights = 3: expected 'none' or a table of role = source"),
        ("rec_tsn_epochs = 2", "rec_tsn_epochs is no longer a setting"),
        ("[sampling]\nbugdets = [1]", "unknown setting sampling.'bugdets'"),
        ("[recognizer]\nepochs = 1.5", "recognizer.epochs = 1.5: expected an integer"),
        ("tables = 3", "report.tables = 3: expected a list, each a string"),
    ],
)
def test_unmappable_or_conflicting_keys_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "x.toml").write_text(text)
    with pytest.raises(UserError) as err:
        load_config_file(tmp_path / "x.toml")
    assert str(tmp_path / "x.toml") in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_main_budget_outside_the_budgets_is_an_error_not_a_rewrite():
    with pytest.raises(UserError, match="main_budget = 4 is not one of the budgets 1,2"):
        build_config(sampling={"budgets": (1, 2)})
    with pytest.raises(UserError, match="main_budget = 3 is not one of the budgets 1,2,4,8"):
        SamplingConfig(main_budget=3)
    assert build_config(sampling={"budgets": (1, 2), "main_budget": 2}).sampling.main_budget == 2
    args = build_parser().parse_args(["--budget", "2", "--device", "cpu"])
    with pytest.raises(UserError, match=r"sampling\.main_budget = 4 is not one of the budgets 2: add it to --budget"):
        config_from_args(args)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "ucf101", "--split", "4"], "argument --split: invalid choice"),
        (["--split", "2"], "data.options.synthetic: unknown option 'split'; valid: num_classes"),
        (["--dataset", "list", "--split", "2"], "data.options.list: unknown option 'split'; valid: train_list, "
                                                "val_list, classes"),
        (["--dataset", "activitynet", "--classes", "c.txt"], "data.options.activitynet: unknown option 'classes'"),
    ],
)
def test_dataset_flags_are_options_of_the_run_dataset(argv, message):
    with pytest.raises(UserError) as err:
        config_from_args(build_parser().parse_args([*argv, "--device", "cpu"]))
    assert message in str(err.value)


def test_dataset_options_are_checked_by_their_adapter(tmp_path):
    """At the door, whichever dataset runs: types, ranges and the adapter's own rules, naming the file."""
    assert dataset_options("ucf101", {"split": 3}).split == 3
    with pytest.raises(UserError, match=r"data.options.ucf101: split = 4: must be at least 1 and at most 3"):
        dataset_options("ucf101", {"split": 4})
    with pytest.raises(UserError, match=r"data.options.synthetic.width = 'wide': expected an integer"):
        dataset_options("synthetic", {"width": "wide"})
    with pytest.raises(UserError, match=r"data.options.synthetic: synthetic dataset: width and height must be even"):
        dataset_options("synthetic", {"width": 33})
    (tmp_path / "s.toml").write_text('[data.options.synthetic]\nnum_classes = "3"\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "s.toml"), "--device", "cpu"])
    with pytest.raises(UserError, match=r"s.toml: data.options.synthetic.num_classes = '3': expected an integer"):
        config_from_args(args)
    # a file's options are checked whole once merged over the preset's: tiny's videos are 6 to 40 frames long
    (tmp_path / "m.toml").write_text('preset = "tiny"\n[data.options.synthetic]\nmax_frames = 10\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "m.toml"), "--device", "cpu"])
    assert config_from_args(args).data.options["synthetic"]["max_frames"] == 10
    args = build_parser().parse_args(["--config", str(tmp_path / "m.toml"), "--preset", "default", "--device", "cpu"])
    with pytest.raises(UserError, match=r"data.options.synthetic: .*min_frames <= max_frames, got 12, 10"):
        config_from_args(args)


def test_flags_override_the_file_which_overrides_the_preset(tmp_path):
    (tmp_path / "c.toml").write_text('preset = "tiny"\nseed = 5\nframes = 6\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "c.toml"), "--seed", "7", "--device", "cpu"])
    cfg = config_from_args(args)
    assert (cfg.preset, cfg.seed, cfg.data.frames, cfg.recognizer.res) == ("tiny", 7, 6,
                                                                           PRESETS["tiny"]["recognizer"]["res"])


def test_every_flag_has_a_config_file_form(tmp_path):
    """Output settings and --weights come from the file too; weights are part of the config (and run.json)."""
    (tmp_path / "d.toml").write_text('preset = "tiny"\nout = "elsewhere"\ncache_dir = "cache"\nquiet = true\n'
                                     '[weights]\nfem = "fem.pt"\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "d.toml"), "--device", "cpu"])
    cfg = config_from_args(args)
    assert (args.out, args.cache_dir, args.quiet) == ("elsewhere", "cache", True)
    assert (cfg.recognizer.weights, cfg.fem.weights) == (None, "fem.pt")
    flags = build_parser().parse_args(["--config", str(tmp_path / "d.toml"), "--out", "here",
                                       "--weights", "recognizer=r.pt", "--device", "cpu"])
    cfg = config_from_args(flags)
    assert (cfg.recognizer.weights, cfg.fem.weights) == ("r.pt", None) and flags.out == "here"  # flags win
    with pytest.raises(UserError, match=r"weights for unknown role\(s\) \['backbone'\]"):
        build_config("tiny", weights={"backbone": "x.pt"})


def test_run_json_round_trips_to_the_same_config(tmp_path):
    cfg = build_config("tiny", seed=3, sampling={"budgets": (2, 3)}, recognizer={"weights": "r.pt"})
    (tmp_path / "run.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), "seed": 3}))
    assert build_config(file_values=load_config_file(tmp_path / "run.json")) == cfg


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "budgets = [1,", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("typo.toml", "rec_epoch = 3", "unknown setting 'rec_epoch'"),
        ("nested.toml", "[fem]\nclasses = 3", "unknown setting fem.'classes'"),
        ("list.yaml", "- 1\n- 2", "expected a table of settings"),
        ("conf.ini", "x=1", "expected a .toml, .yaml, .yml or .json file"),
    ],
)
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError) as err:
        load_config_file(tmp_path / name)
    assert name in str(err.value) and message in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="No such file"):
        load_config_file(tmp_path / "nope.toml")


def test_unknown_table_is_rejected_wherever_it_comes_from(tmp_path):
    """The config layer lies below the tables' registry: a run and the command line check the names."""
    with pytest.raises(UserError, match="unknown table 'bogus'; valid: main, guiding"):
        chosen_tables(build_config(report={"tables": ("main", "bogus")}))
    (tmp_path / "t.toml").write_text('preset = "tiny"\n[report]\ntables = ["main", "fusoin"]\n')
    with pytest.raises(UserError, match=r"unknown table 'fusoin'; did you mean 'fusion'\?"):
        config_from_args(build_parser().parse_args(["--config", str(tmp_path / "t.toml"), "--device", "cpu"]))


def test_dtype_is_checked_and_reaches_the_config(tmp_path):
    with pytest.raises(UserError, match="--dtype float16: valid: float32, float64"):
        RunConfig(dtype="float16")
    args = build_parser().parse_args(["--preset", "tiny", "--dtype", "float64", "--device", "cpu"])
    assert config_from_args(args).dtype == "float64" and build_config("tiny").dtype == "float32"


def test_workers_default_to_this_process_share_of_the_cores(monkeypatch):
    """The cores this process may use, divided among torchrun's processes on the node; a flag still wins."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert build_config("paper").workers == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert build_config("paper").workers == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert build_config("paper").workers == 1
    args = build_parser().parse_args(["--workers", "3", "--device", "cpu"])
    assert config_from_args(args).workers == 3


def test_sampler_options_from_toml_yaml_json_and_flags(tmp_path):
    """``[sampling.options.<name>]`` (``sampler_options`` in an old file) in any config format and
    ``--sampler-option`` flags, merged field by field:
    the file over the preset, the flags over the file."""
    (tmp_path / "o.toml").write_text('preset = "tiny"\n[sampling.options.nsnet]\nd = 256\nheads = 8\n'
                                     '[sampling.options.scsampler]\nloss = "rank"\n')
    (tmp_path / "o.yaml").write_text("sampler_options:\n  nsnet: {d: 256, heads: 8}\n  scsampler: {loss: rank}\n")
    (tmp_path / "o.json").write_text(json.dumps({"sampler_options": {"nsnet": {"d": 256, "heads": 8},
                                                                     "scsampler": {"loss": "rank"}}}))
    expected = {"nsnet": {"d": 256, "heads": 8}, "scsampler": {"loss": "rank"}}
    for name in ("o.toml", "o.yaml", "o.json"):
        assert build_config(file_values=load_config_file(tmp_path / name)).sampling.options == expected
    args = build_parser().parse_args(["--config", str(tmp_path / "o.toml"), "--device", "cpu",
                                      "--sampler-option", "nsnet.heads=2", "--sampler-option", "nsnet.fusion=add",
                                      "--sampler-option", "nsnet.lr=1e-3", "--sampler-option", "nsnet.no-ns=true"])
    assert config_from_args(args).sampling.options == {
        "nsnet": {"d": 256, "heads": 2, "fusion": "add", "lr": 0.001, "no_ns": True}, "scsampler": {"loss": "rank"}}
    # the paper preset's NSNet width survives an option set on top of it
    assert build_config("paper", sampling={"options": {"nsnet": {"heads": 8}}}).sampling.options["nsnet"] == {
        **PRESETS["paper"]["sampling"]["options"]["nsnet"], "heads": 8}


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("nsnet.dd=3", "sampling.options.nsnet: unknown option 'dd'; valid: seed, epochs, batch_size, lr, "
                       "momentum, weight_decay, lr_decay, milestones, warmup_epochs, clip_grad_norm, early_stop, "
                       "patience, holdout_fraction, temporal_shift, d, heads"),
        ("nsnet.heads=four", "sampling.options.nsnet.heads = 'four': expected an integer"),
        ("nsnet.fusion=unoin", "sampling.options.nsnet: unknown fusion 'unoin'"),
        ("uniform.seed=1", "sampling.options.uniform: unknown option 'seed'; valid: none (it takes no options)"),
        ("nssnet.d=3", "unknown sampler 'nssnet'"),
        ("nsnet.device=cuda", "sampling.options.nsnet: unknown option 'device'"),
    ],
)
def test_bad_sampler_options_are_one_line_errors(flag, message):
    args = build_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--sampler-option", flag])
    with pytest.raises(UserError) as err:
        config_from_args(args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_malformed_sampler_option_flag_is_rejected():
    with pytest.raises(UserError, match=r"expected SAMPLER\.FIELD=VALUE"):
        build_parser().parse_args(["--sampler-option", "nsnet-d=3"])


def test_aggregation_from_a_flag_or_a_file_is_checked(tmp_path):
    args = build_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--aggregation", "mean_logits"])
    assert config_from_args(args).sampling.aggregation == "mean_logits"
    assert build_config("tiny").sampling.aggregation == "mean_softmax"
    with pytest.raises(UserError, match="invalid choice: 'median'"):
        build_parser().parse_args(["--aggregation", "median"])
    (tmp_path / "a.toml").write_text('preset = "tiny"\naggregation = "median"\n')
    with pytest.raises(UserError, match="unknown aggregation 'median'; valid: mean_softmax, mean_logits, max_features"):
        config_from_args(build_parser().parse_args(["--config", str(tmp_path / "a.toml"), "--device", "cpu"]))
