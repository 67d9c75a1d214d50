"""``--help`` pages and shell completion are generated from the schemas: every key, its type, its value."""

import dataclasses
import subprocess
import sys
import typing

import pytest
import yaml

from latentmim.ablate.plan import AblateOptions
from latentmim.cli.export import ExportOptions
from latentmim.cli.help import named_configs
from latentmim.cli.main import main
from latentmim.config.load import compose_config, to_yaml
from latentmim.config.schema import PretrainConfig
from latentmim.eval.suites import SUITES


def leaf_fields(cls, prefix=""):
    """(dotted key, field) of every leaf of a dataclass, walked independently of the help code."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def help_lines(capsys, *args):
    assert main([*args, "--help"]) == 0
    out = capsys.readouterr().out
    return {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}


SCHEMAS = [(("pretrain",), PretrainConfig), (("ablate",), AblateOptions), (("export",), ExportOptions)]
SCHEMAS += [(("eval", name), suite.config) for name, suite in SUITES.items()] + [(("knn",), SUITES["knn"].config)]


@pytest.mark.parametrize("args,cls", SCHEMAS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_help_names_every_schema_key_with_its_type(args, cls, capsys):
    lines = help_lines(capsys, *args)
    for key, _f in leaf_fields(cls):
        assert key in lines, f"{' '.join(args)} --help lacks {key}"
    assert len(lines) >= len(list(leaf_fields(cls)))


def test_pretrain_help_shows_types_defaults_comments_and_named_configs(capsys):
    assert main(["pretrain", "--help"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    demo = compose_config([], "demo")
    assert lines["embed_dim"].split()[1:5] == ["int", "or", "null", "="] and f"= {demo.embed_dim}" in lines["embed_dim"]
    assert "visible patches" in lines["num_vis"] and f"= {demo.num_vis} " in lines["num_vis"]
    assert lines["env.precision"].split()[1] == "str" and "fp32 | bf16 | fp16" in lines["env.precision"]
    # grouped as in the schema
    order = [out.index(f"\n{g}:\n") for g in ("encoder", "views", "target encoder", "loss", "data", "optimisation",
                                               "run", "env", "log")]
    assert order == sorted(order)
    # every named config with its one-line purpose
    for name, purpose in named_configs().items():
        assert f"  {name:<10} {purpose}" in out
    assert "-h" not in lines  # flags do not pose as keys
    # another config's values
    lmim = help_lines(capsys, "pretrain", "--config-name", "lmim")
    assert "= vit_base" in lmim["encoder"] and "= 800" in lmim["epochs"]


def test_every_schema_field_has_a_comment(capsys):
    # the help page is the documentation of a key: none may be blank
    lines = help_lines(capsys, "pretrain")
    blank = [k for k, line in lines.items() if k in {key for key, _ in leaf_fields(PretrainConfig)}
             and len(line.split("=", 1)[1].split()) < 2]
    assert not blank, blank


def test_cfg_job_prints_the_composed_config_and_round_trips(capsys, tmp_path):
    args = ["epochs=3", "lr=2e-3", "proj.mlp_dim=256", "env.precision=bf16", f"output_dir={tmp_path}"]
    assert main(["pretrain", "--cfg", "job", *args]) == 0
    out = capsys.readouterr().out
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
    cfg = compose_config(args, "demo")
    assert out == to_yaml(cfg)
    # composing the printed YAML again (every leaf as an override) gives the same config
    tree = yaml.safe_load(out)

    def flat(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}=" + ("null" if v is None else yaml.safe_dump(v, default_flow_style=True).strip()
                                         .removesuffix("...").strip())
    again = compose_config(list(flat(tree)), "lmim")
    assert again == cfg


def test_cfg_job_for_an_eval_suite_shows_what_the_checkpoint_resolves_to(capsys, tiny):
    from latentmim.engine.pretrain import pretrain

    run = compose_config([*tiny, "epochs=1", "warmup_epochs=0"])
    pretrain(run)
    capsys.readouterr()
    ckpt = f"{run.run_dir}/checkpoint_latest.pth"
    assert main(["eval", "knn", "--cfg", "job", f"checkpoint={ckpt}", "k=5"]) == 0
    out = capsys.readouterr().out
    parsed = yaml.safe_load(out)
    assert parsed["k"] == 5 and parsed["checkpoint"] == ckpt and parsed["dataset"] is None
    assert "#   dataset: synthetic" in out and f"#   synthetic_num_train: {run.synthetic.num_train}" in out
    assert main(["knn", "--cfg", "job", f"checkpoint={ckpt}", "k=5"]) == 0  # latentmim knn = eval knn
    assert capsys.readouterr().out == out


@pytest.mark.parametrize("args,needle", [
    (["pretrain", "--cfg", "hydra"], "--cfg: expected one of job, all, got 'hydra'"),
    (["knn", "-m", "checkpoint=x"], "only 'latentmim pretrain' sweeps"),
    (["pretrain", "-m", "--cfg", "job", "lr=1e-3,2e-3"], "--cfg"),
    (["pretrain", "-m", "job_name=a,b"], "'job_name' cannot be swept"),
    (["pretrain", "-m", "lr=1e-3,oops"], "config key 'lr'"),
    (["completion", "zsh"], "completion: usage"),
])
def test_flag_mistakes_are_one_line(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_bash_completion_offers_commands_suites_and_keys(tmp_path):
    script = subprocess.run([sys.executable, "-m", "latentmim.cli.main", "completion", "bash"],
                            capture_output=True, text=True, check=True).stdout
    (tmp_path / "c.sh").write_text(script)

    def complete(*words):
        line = " ".join(words)
        prog = (f'source {tmp_path}/c.sh; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _latentmim; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        return subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True).stdout.split()

    assert {"pretrain", "eval", "ablate", "export", "knn"} <= set(complete("latentmim", "''"))
    assert complete("latentmim", "pretrain", "env.prec") == ["env.precision="]
    assert complete("latentmim", "eval", "fin") == ["finetune"]
    assert "token_drop=" in complete("latentmim", "eval", "finetune", "tok")
    assert complete("latentmim", "knn", "tempe") == ["temperature="]  # knn completes eval knn's keys
    assert "segment.clusters=" in complete("latentmim", "eval", "all", "segment.clu")
    assert complete("latentmim", "ablate", "budg") == ["budget_min="]
    assert set(complete("latentmim", "pretrain", "--config-name", "''")) == set(named_configs())
