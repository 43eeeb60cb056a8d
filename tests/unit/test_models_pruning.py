"""CIFAR ResNets with Distiller's names and figures, user factories, and Distiller-exact structured pruning."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from pytest_prunebench.errors import ModelError, PrunebenchError, ScheduleError
from pytest_prunebench.models import RESNET_DEPTHS, build_model, count_macs, count_weights
from pytest_prunebench.pruning import (
    Mask,
    activation_statistics,
    apply_masks,
    check_layers,
    conv_batchnorms,
    layer_sizes,
    prune_to_final,
    pruned_count,
    rank_pruner,
    ranked_weights,
    reached_sparsity,
)
from pytest_prunebench.schedule import PrunerSpec, Schedule, load_schedule

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "distiller-schedules"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    # These models see one or two 32x32 images: a second intra-op thread buys nothing, and when the machine is busy
    # (another training job on a 2-core box) OpenMP contention made a ResNet-110 forward take 6 s instead of 0.05 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def corpus_schedule(name: str) -> Schedule:
    if not CORPUS.is_dir():
        pytest.skip(f"Distiller schedule corpus not found at {CORPUS}")
    return load_schedule(CORPUS / name)


def write_schedule(tmp_path: Path, text: str, name: str = "schedule.yaml") -> Schedule:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_schedule(path)


def convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


# --- models -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"])
def test_builtin_resnets_have_their_depth(name: str) -> None:
    model = build_model(name, 10)
    three_by_three = [c for c in convs(model).values() if c.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(three_by_three) + len(linears) == RESNET_DEPTHS[name]
    blocks = (RESNET_DEPTHS[name] - 2) // 6
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == blocks
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_distiller_parameter_names() -> None:
    names = dict(build_model("resnet56", 10).named_parameters())
    for expected in ("conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.8.conv2.weight",
                     "layer2.0.downsample.0.weight", "layer3.0.downsample.1.weight", "layer3.8.bn2.weight",
                     "fc.weight", "fc.bias"):
        assert expected in names, expected
    assert not any(n.startswith("layer1.0.downsample") or n.startswith("layer2.1.downsample") for n in names)
    assert "conv1.bias" not in names  # convs carry no bias, as in Distiller


def test_resnet56_cifar_alias_is_resnet56() -> None:
    alias = build_model("resnet56_cifar", 10)
    plain = build_model("resnet56", 10)
    assert [(n, p.shape) for n, p in alias.named_parameters()] == [(n, p.shape) for n, p in plain.named_parameters()]


def test_resnet56_distiller_figures() -> None:
    model = build_model("resnet56", 10)
    assert count_macs(model) == 125_747_840
    assert count_weights(model) == 851_504


def test_resnet20_distiller_weights() -> None:
    assert count_weights(build_model("resnet20_cifar", 10)) == 270_896


@pytest.mark.parametrize("classes", [2, 7, 100])
def test_num_classes_sets_the_fc(classes: int) -> None:
    model = build_model("resnet20", classes)
    assert model.fc.out_features == classes and model.fc.in_features == 64
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, classes)


@pytest.mark.parametrize("name", ["resnet18", "resnet57", "vgg16", ""])
def test_unknown_model(name: str) -> None:
    with pytest.raises(ModelError) as info:
        build_model(name, 10)
    message = str(info.value)
    assert f"unknown model {name!r}" in message and "resnet56" in message and "package.module:factory" in message
    assert "\n" not in message


USER_MODULE = "prunebench_test_user_models"


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / f"{USER_MODULE}.py").write_text(
        "from torch import nn\n"
        "\n"
        "def tiny(num_classes):\n"
        "    head = nn.Linear(4, num_classes)\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)\n"
        "\n"
        "def not_a_model(num_classes):\n"
        "    return [num_classes]\n"
        "\n"
        "def no_classes():\n"
        "    return nn.Conv2d(3, 4, 3)\n"
        "\n"
        "VALUE = 3\n",
        encoding="utf-8",
    )
    (tmp_path / "prunebench_test_broken_models.py").write_text("def tiny(:\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, USER_MODULE, raising=False)
    yield USER_MODULE
    sys.modules.pop(USER_MODULE, None)


def test_user_factory(user_module: str) -> None:
    model = build_model(f"{user_module}:tiny", 5)
    assert isinstance(model, nn.Sequential)
    assert model[-1].out_features == 5  # the factory received num_classes
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no_such_module_for_prunebench:tiny", "cannot import 'no_such_module_for_prunebench'"),
        ("no_such_package_pb.models:tiny", "cannot import 'no_such_package_pb.models'"),
        (f"{USER_MODULE}:missing", f"{USER_MODULE} has no callable 'missing'"),
        (f"{USER_MODULE}:VALUE", f"{USER_MODULE} has no callable 'VALUE'"),
        (f"{USER_MODULE}:not_a_model", "not_a_model(num_classes=...) returned list, not a torch.nn.Module"),
        (f"{USER_MODULE}:no_classes", "no_classes(num_classes=10) failed: TypeError"),
        ("prunebench_test_broken_models:tiny", "importing 'prunebench_test_broken_models' failed: SyntaxError"),
        (":tiny", "a user model is written package.module:factory"),
        (f"{USER_MODULE}:", "a user model is written package.module:factory"),
    ],
)
def test_user_factory_errors(user_module: str, spec: str, expected: str) -> None:
    with pytest.raises(ModelError) as info:
        build_model(spec, 10)
    message = str(info.value)
    assert f"model {spec!r}" in message and expected in message, message
    assert "\n" not in message


# --- the count rule ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sparsity", "total", "pruned"),
    [(0.6, 16, 9), (0.5, 16, 8), (0.7, 16, 11), (0.1, 64, 6), (0.3, 64, 19), (0.0, 16, 0), (0.99, 2, 1),
     (0.99, 16, 15), (0.5, 1, 0), (1.0, 16, 15), (1.0, 1, 0)],
)
def test_pruned_count(sparsity: float, total: int, pruned: int) -> None:
    # 1.0 never comes from a schedule (refused there) but can reach rank_pruner(sparsity=...): still never all N.
    assert pruned_count(sparsity, total) == pruned
    assert total - pruned_count(sparsity, total) >= 1


def test_sparsity_override_of_one_keeps_a_structure() -> None:
    model = build_model("resnet20", 10)
    (mask,) = rank_pruner(model, spec("filters", "l1", 0.5), sparsity=1.0)
    assert len(mask.indices) == 15


# --- corpus figures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "macs", "weights"),
    [
        ("resnet56_cifar_filter_rank.yaml", 78_856_832, 634_640),
        ("resnet56_cifar_filter_rank_v2.yaml", 67_797_632, 570_704),
        ("resnet56_cifar_channel_rank.yaml", 66_592_384, 566_887),
    ],
)
def test_corpus_schedule_reaches_distillers_figures(name: str, macs: int, weights: int) -> None:
    schedule = corpus_schedule(name)
    torch.manual_seed(0)
    model = build_model("resnet56", 10)
    check_layers(schedule, model, "resnet56")
    masks = prune_to_final(model, schedule)
    assert len(masks) == sum(len(p.layers) for p in schedule.pruners)
    assert count_macs(model) == macs
    assert count_weights(model) == weights
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_filter_rank_thinned_shapes_match_the_distiller_table() -> None:
    schedule = corpus_schedule("resnet56_cifar_filter_rank.yaml")
    model = build_model("resnet56", 10)
    prune_to_final(model, schedule)
    layers = convs(model)
    # From the Parameters table in the file's header.
    assert tuple(layers["layer1.0.conv1"].weight.shape) == (7, 16, 3, 3)
    assert tuple(layers["layer1.0.conv2"].weight.shape) == (16, 7, 3, 3)
    assert tuple(layers["layer2.1.conv1"].weight.shape) == (16, 32, 3, 3)
    assert tuple(layers["layer2.5.conv1"].weight.shape) == (32, 32, 3, 3)
    assert tuple(layers["layer3.1.conv1"].weight.shape) == (58, 64, 3, 3)
    assert tuple(layers["layer3.2.conv2"].weight.shape) == (64, 45, 3, 3)
    assert tuple(layers["layer3.4.conv1"].weight.shape) == (64, 64, 3, 3)


MIXED = """\
pruners:
  filters_half:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight, module.layer3.1.conv1.weight]
  channels_quarter:
    class: L2RankedStructureParameterPruner
    group_type: Channels
    desired_sparsity: 0.25
    weights: [layer2.1.conv2.weight]
policies:
  - pruner: {instance_name: filters_half}
    epochs: [0]
  - pruner: {instance_name: channels_quarter}
    epochs: [0]
"""


def test_mixed_filters_and_channels_thin_to_the_predicted_shapes(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, MIXED)
    torch.manual_seed(1)
    model = build_model("resnet20", 10)
    check_layers(schedule, model, "resnet20")
    dense_weights = count_weights(model)
    prune_to_final(model, schedule)
    layers = convs(model)
    keep_16 = 16 - pruned_count(0.5, 16)
    keep_64 = 64 - pruned_count(0.5, 64)
    keep_32 = 32 - pruned_count(0.25, 32)
    assert (keep_16, keep_64, keep_32) == (8, 32, 24)
    assert layers["layer1.0.conv1"].out_channels == keep_16
    assert model.layer1[0].bn1.num_features == keep_16
    assert layers["layer1.0.conv2"].in_channels == keep_16
    assert layers["layer1.0.conv2"].out_channels == 16  # the residual stream is untouched
    assert layers["layer3.1.conv1"].out_channels == keep_64
    assert layers["layer3.1.conv2"].in_channels == keep_64
    assert layers["layer2.1.conv2"].in_channels == keep_32
    assert layers["layer2.1.conv1"].out_channels == keep_32
    assert model.layer2[1].bn1.num_features == keep_32
    assert layers["layer2.1.conv2"].out_channels == 32
    assert layers["layer2.1.conv1"].in_channels == 32
    assert model.fc.out_features == 10 and model.fc.in_features == 64
    removed = 2 * (8 * 16 * 9) + 2 * (32 * 64 * 9) + 2 * (8 * 32 * 9)
    assert count_weights(model) == dense_weights - removed
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# --- Leader groups ----------------------------------------------------------------------------------------------


def test_leader_group_shares_the_leaders_choice() -> None:
    schedule = corpus_schedule("resnet56_cifar_channel_rank.yaml")
    leader = schedule.pruner("filter_pruner_70")
    torch.manual_seed(2)
    model = build_model("resnet56", 10)
    masks = rank_pruner(model, leader)
    assert [m.layer for m in masks] == list(leader.layers)
    assert all(m.kind == "channels" and m.total == 16 for m in masks)
    assert len(masks[0].indices) == pruned_count(0.7, 16) == 11
    assert all(m.indices == masks[0].indices for m in masks)
    # The leader's choice is its own ranking. Without Leader these convs (all readers of layer1's residual stream)
    # are still coupled, so they share one choice, ranked on their mean norm: a different choice from the leader's.
    independent = PrunerSpec(leader.name, leader.class_name, leader.kind, leader.ranker, leader.desired_sparsity,
                             leader.layers, leader=False)
    own = rank_pruner(model, independent)
    assert all(o.indices == own[0].indices for o in own)
    mean = torch.stack([torch.tensor(o.scores) for o in own]).mean(dim=0)
    assert own[0].indices == tuple(sorted(int(i) for i in torch.argsort(mean, stable=True)[:11]))
    assert own[0].indices != masks[0].indices


def test_leader_group_with_different_structure_counts_is_refused(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, """\
pruners:
  mixed:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    group_dependency: Leader
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight, module.layer2.0.conv1.weight]
policies:
  - pruner: {instance_name: mixed}
    epochs: [0]
""")
    with pytest.raises(ScheduleError) as info:
        check_layers(schedule, build_model("resnet20", 10), "resnet20")
    message = str(info.value)
    assert "\n" not in message
    assert schedule.path in message and "pruners.mixed.weights" in message
    assert "a Leader group needs layers with the same number of filters, got [16, 32]" in message


# --- ranking ----------------------------------------------------------------------------------------------------

SCALES = [5, 12, 3, 16, 1, 9, 14, 7, 2, 11, 15, 4, 10, 6, 13, 8]  # a permutation of 1..16


def spec(kind: str, ranker: str, sparsity: float, layer: str = "layer1.0.conv1") -> PrunerSpec:
    return PrunerSpec("p", "L1RankedStructureParameterPruner", kind, ranker, sparsity, (layer,))  # type: ignore[arg-type]


def smallest(scales: list[int], count: int) -> tuple[int, ...]:
    return tuple(sorted(sorted(range(len(scales)), key=lambda i: scales[i])[:count]))


@pytest.mark.parametrize("ranker", ["l1", "l2"])
def test_ranking_removes_the_lowest_norm_filters(ranker: str) -> None:
    model = build_model("resnet20", 10)
    conv = model.layer1[0].conv1
    base = torch.randn(1, 16, 3, 3).sign()
    with torch.no_grad():
        conv.weight.copy_(torch.stack([base[0] * s for s in SCALES]))
    (mask,) = rank_pruner(model, spec("filters", ranker, 0.6))
    assert mask.indices == smallest(SCALES, 9) == tuple(i for i, s in enumerate(SCALES) if s <= 9)
    assert (mask.kind, mask.total, mask.layer) == ("filters", 16, "layer1.0.conv1")


@pytest.mark.parametrize("ranker", ["l1", "l2"])
def test_ranking_removes_the_lowest_norm_channels(ranker: str) -> None:
    model = build_model("resnet20", 10)
    conv = model.layer1[0].conv2
    base = torch.randn(16, 1, 3, 3).sign()
    with torch.no_grad():
        conv.weight.copy_(torch.cat([base * s for s in SCALES], dim=1))
    (mask,) = rank_pruner(model, spec("channels", ranker, 0.25, "layer1.0.conv2"))
    assert mask.indices == smallest(SCALES, 4) == (2, 4, 8, 11)


def test_l1_and_l2_rank_differently() -> None:
    # Flat filters (every weight ~1) against spiky ones (one weight of ~24): spiky filters have the lower mean |w|
    # (24/144) but the higher root-mean-square (24/12), so L1 prunes the spiky ones and L2 the flat ones.
    model = build_model("resnet20", 10)
    conv = model.layer1[0].conv1
    spiky = (1, 3, 4, 6, 9, 10, 12, 15)
    with torch.no_grad():
        for i in range(16):
            if i in spiky:
                conv.weight[i].zero_()
                conv.weight[i, 0, 1, 1] = 24 + i
            else:
                conv.weight[i].fill_(1 + 0.01 * i)
    (l1,) = rank_pruner(model, spec("filters", "l1", 0.5))
    (l2,) = rank_pruner(model, spec("filters", "l2", 0.5))
    assert l1.indices == spiky
    assert l2.indices == tuple(i for i in range(16) if i not in spiky)


def test_sparsity_override() -> None:
    model = build_model("resnet20", 10)
    (mask,) = rank_pruner(model, spec("filters", "l1", 0.5), sparsity=0.25)
    assert len(mask.indices) == 4


# --- check_layers -----------------------------------------------------------------------------------------------


def layer_schedule(tmp_path: Path, layer: str) -> Schedule:
    return write_schedule(tmp_path, f"""\
pruners:
  p1:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.{layer}.weight]
policies:
  - pruner: {{instance_name: p1}}
    epochs: [0]
""")


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ("layer1.0.conv9", ["resnet20 has no layer 'layer1.0.conv9'", "`prunebench layers resnet20`"]),
        ("layer4.0.conv1", ["resnet20 has no layer 'layer4.0.conv1'"]),
        ("layer1.0.bn1", ["'layer1.0.bn1' is a BatchNorm2d", "Conv2d layers only"]),
        ("fc", ["'fc' is a Linear", "Conv2d layers only"]),
    ],
)
def test_check_layers_refuses(tmp_path: Path, layer: str, expected: list[str]) -> None:
    schedule = layer_schedule(tmp_path, layer)
    with pytest.raises(ScheduleError) as info:
        check_layers(schedule, build_model("resnet20", 10), "resnet20")
    message = str(info.value)
    assert "\n" not in message
    assert schedule.path in message and "pruners.p1.weights" in message
    for part in expected:
        assert part in message, message


def test_check_layers_accepts_downsample_convs(tmp_path: Path) -> None:
    check_layers(layer_schedule(tmp_path, "layer2.0.downsample.0"), build_model("resnet20", 10), "resnet20")
    with pytest.raises(ScheduleError, match="BatchNorm2d"):
        check_layers(layer_schedule(tmp_path, "layer2.0.downsample.1"), build_model("resnet20", 10), "resnet20")


# --- masks ------------------------------------------------------------------------------------------------------


def test_apply_masks_zeroes_exactly_the_masked_slices() -> None:
    model = build_model("resnet20", 10)
    with torch.no_grad():
        for conv in convs(model).values():
            conv.weight.uniform_(0.5, 1.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    masks = [
        Mask("p", "layer1.0.conv1", "filters", (1, 4), 16),
        Mask("q", "layer2.1.conv2", "channels", (0, 31), 32),
    ]
    apply_masks(model, masks)
    after = dict(model.named_parameters())

    filters = after["layer1.0.conv1.weight"]
    assert torch.count_nonzero(filters[[1, 4]]) == 0
    keep = [i for i in range(16) if i not in (1, 4)]
    assert torch.equal(filters[keep], before["layer1.0.conv1.weight"][keep])

    channels = after["layer2.1.conv2.weight"]
    assert torch.count_nonzero(channels[:, [0, 31]]) == 0
    assert torch.equal(channels[:, 1:31], before["layer2.1.conv2.weight"][:, 1:31])

    for name, value in after.items():
        if name not in ("layer1.0.conv1.weight", "layer2.1.conv2.weight"):
            assert torch.equal(value, before[name]), name


def test_apply_masks_skips_a_thinned_layer() -> None:
    model = build_model("resnet20", 10)
    with torch.no_grad():
        model.layer1[0].conv1.weight.fill_(1.0)
    apply_masks(model, [Mask("p", "layer1.0.conv1", "filters", (0, 1), 32)])  # the layer no longer has 32 filters
    assert torch.count_nonzero(model.layer1[0].conv1.weight) == model.layer1[0].conv1.weight.numel()


# --- round_to ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sparsity", "total", "round_to", "count"),
    [
        (0.3, 64, 1, 19),  # Distiller: floor(19.2)
        (0.3, 64, 8, 16),  # 45 kept -> 48
        (0.5, 64, 8, 32),  # 32 kept is already a multiple
        (0.3, 16, 8, 0),  # 12 kept -> 16: nothing left to remove
        (0.99, 16, 8, 8),  # 1 kept -> 8
        (0.99, 10, 16, 0),  # a multiple above the layer's width keeps everything
    ],
)
def test_round_to_keeps_a_multiple_of_structures(sparsity: float, total: int, round_to: int, count: int) -> None:
    assert pruned_count(sparsity, total, round_to) == count


def test_a_schedules_round_to_thins_to_simd_friendly_widths() -> None:
    from pytest_prunebench.schedule import parse_schedule

    weights = ["layer3.0.conv1.weight", "layer2.1.conv1.weight"]
    document = {"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                                  "desired_sparsity": 0.3, "weights": weights}},
                "policies": [{"pruner": {"instance_name": "p"}, "epochs": [0]}],
                "prunebench": {"model": "resnet20", "round_to": 8}}
    schedule = parse_schedule(document, "s.yaml", "s")
    assert schedule.round_to == 8
    model = build_model("resnet20", 10)
    prune_to_final(model, schedule)
    layers = convs(model)
    assert layers["layer3.0.conv1"].out_channels == 48 and layers["layer2.1.conv1"].out_channels == 24  # 23 -> 24
    for bad in (0, 2.5, True, "8"):
        with pytest.raises(ScheduleError, match="prunebench.round_to: a whole number >= 1"):
            parse_schedule({**document, "prunebench": {"round_to": bad}}, "s.yaml", "s")


# --- AGP, coupled layers, element and fc-input masks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "macs"),
    [  # each file's "Total MACs" after thinning, from its header
        ("resnet20_filters.schedule_agp.yaml", 30_655_104),
        ("resnet20_filters.schedule_agp_2.yaml", 30_638_720),
        ("resnet20_filters.schedule_agp_4.yaml", 24_723_776),
    ],
)
def test_agp_corpus_files_at_their_final_targets_reach_distillers_macs(name: str, macs: int) -> None:
    schedule = corpus_schedule(name)
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    dense = layer_sizes(model, schedule)
    check_layers(schedule, model, "resnet20")
    prune_to_final(model, schedule)
    assert count_macs(model) == macs
    reached = reached_sparsity(model, schedule, dense)
    for pruner in schedule.pruners:  # final targets, as Distiller counts them: floor(sparsity * N) of each layer
        if pruner.kind == "filters":
            expected = sum(pruned_count(pruner.desired_sparsity, dense[(layer, "filters")]) for layer in pruner.layers)
            assert reached[pruner.name] == expected / sum(dense[(layer, "filters")] for layer in pruner.layers)
        elif pruner.kind == "elements":  # of the (thinned) tensors, as Distiller's tables count them
            assert reached[pruner.name] == pytest.approx(pruner.desired_sparsity, abs=0.001)
        else:  # the fc's input features: half of those left, e.g. (10, 32) with 16 zero columns in agp_4
            assert reached[pruner.name] == pruner.desired_sparsity == 0.5
    fine = model.layer3[1].conv1.weight  # fine-grained pruning removes no filter: its zeros stay in the tensor
    assert fine.shape[0] == 64 and (fine == 0).float().mean().item() == pytest.approx(0.7, abs=0.001)
    assert model.fc.out_features == 10  # never the classes


def test_coupled_convs_in_one_pruner_share_one_choice() -> None:
    # agp's low_pruner names layer2's residual-stream producers (conv2s, downsample) and its inner conv1s without
    # Leader: the stream producers must lose the same filters, the conv1s choose on their own.
    pruner = corpus_schedule("resnet20_filters.schedule_agp.yaml").pruner("low_pruner")
    torch.manual_seed(3)
    model = build_model("resnet20", 10)
    masks = {m.layer: m for m in rank_pruner(model, pruner, sparsity=0.5)}
    stream = ["layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2", "layer2.2.conv2"]
    assert len({masks[layer].indices for layer in stream}) == 1 and len(masks[stream[0]].indices) == 16
    mean = torch.stack([torch.tensor(masks[layer].scores) for layer in stream]).mean(dim=0)
    assert masks[stream[0]].indices == tuple(sorted(int(i) for i in torch.argsort(mean, stable=True)[:16]))
    inner = ["layer2.0.conv1", "layer2.1.conv1", "layer2.2.conv1"]
    assert len({masks[layer].indices for layer in inner}) == 3  # independent rankings
    for layer in inner:
        own = torch.argsort(torch.tensor(masks[layer].scores), stable=True)[:16]
        assert masks[layer].indices == tuple(sorted(int(i) for i in own))


def test_element_mask_follows_distillers_level_pruning() -> None:
    # prune_level: k = int(sparsity * numel) smallest magnitudes set the threshold; every |w| <= threshold goes.
    conv = nn.Conv2d(1, 2, 2, bias=False)
    model = nn.Sequential(conv)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-0.5, 0.1, 0.3, -0.1, 0.2, 0.9, -0.05, 0.7]).view(2, 1, 2, 2))
    pruner = PrunerSpec("fine", "AutomatedGradualPruner", "elements", "magnitude", 0.5, ("0",),
                        initial_sparsity=0.1)
    (mask,) = rank_pruner(model, pruner, sparsity=0.3)  # k = int(2.4) = 2: the threshold is 0.1, shared by two
    assert mask.count == 3 and mask.total == 8
    apply_masks(model, [mask])
    assert conv.weight.flatten().tolist() == pytest.approx([-0.5, 0, 0.3, 0, 0.2, 0.9, 0, 0.7])
    (none,) = rank_pruner(model, pruner, sparsity=0.1)  # int(0.8) = 0: nothing
    assert none.count == 0


def test_fc_rows_mask_the_input_features_never_the_classes(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, """\
pruners:
  fc_pruner:
    class: L2RankedStructureParameterPruner
    group_type: Rows
    desired_sparsity: 0.5
    weights: [module.fc.weight]
policies:
  - pruner: {instance_name: fc_pruner}
    epochs: [0]
prunebench: {model: resnet20}
""")
    torch.manual_seed(4)
    model = build_model("resnet20", 10)
    check_layers(schedule, model, "resnet20")
    norms = model.fc.weight.detach().pow(2).mean(dim=0).sqrt()
    prune_to_final(model, schedule)
    assert tuple(model.fc.weight.shape) == (10, 64)  # a mask, not thinned: Distiller never thinned fc inputs
    zero = (model.fc.weight == 0).all(dim=0)
    assert zero.sum() == 32 and set(torch.nonzero(zero).flatten().tolist()) == set(
        torch.argsort(norms, stable=True)[:32].tolist())
    with pytest.raises(ScheduleError, match=r"Rows \(fc input\) pruning applies to Linear layers only"):
        check_layers(replace(schedule, pruners=(replace(schedule.pruners[0], layers=("conv1",)),)), model,
                     "resnet20")


def test_element_pruners_refuse_a_batchnorm(tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, """\
pruners:
  p: {class: SparsityLevelParameterPruner, levels: {module.layer1.0.bn1.weight: 0.5}}
policies:
  - pruner: {instance_name: p}
    epochs: [0]
""")
    with pytest.raises(ScheduleError, match="'layer1.0.bn1' is a BatchNorm2d; fine-grained pruning applies to "
                                            "Conv2d or Linear layers only"):
        check_layers(schedule, build_model("resnet20", 10), "resnet20")


# --- random and activation rankers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "macs"), [("resnet56_cifar_activation_apoz.yaml", 78_856_832),
                                            ("resnet56_cifar_activation_apoz_v2.yaml", 67_797_632)])
def test_activation_corpus_files_at_their_final_targets_reach_distillers_macs(name: str, macs: int) -> None:
    schedule = corpus_schedule(name)
    model = build_model("resnet56", 10)
    check_layers(schedule, model, "resnet56")
    prune_to_final(model, schedule, torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert count_macs(model) == macs


def activation_spec(ranker: str, sparsity: float = 1 / 16) -> PrunerSpec:
    return PrunerSpec("act", f"Activation{ranker.capitalize()}RankedFilterPruner", "filters", ranker, sparsity,
                      ("layer1.0.conv1",))


def test_activation_statistics_and_rankings_read_the_relu_after_the_conv() -> None:
    torch.manual_seed(5)
    model = build_model("resnet20", 10)
    bn = model.layer1[0].bn1
    with torch.no_grad():  # filter 3 never fires; filter 9 always outputs exactly 5
        bn.bias[3] = -1e4
        bn.weight[9], bn.bias[9] = 0.0, 5.0
    images = torch.randn(6, 3, 32, 32)
    model.train()
    apoz, mean = activation_statistics(model, ("layer1.0.conv1", "layer2.0.conv1"), images)
    assert model.training  # collected in eval mode, mode restored
    assert apoz["layer1.0.conv1"][3] == 1 and mean["layer1.0.conv1"][3] == 0
    assert apoz["layer1.0.conv1"][9] == 0 and mean["layer1.0.conv1"][9] == pytest.approx(5.0)
    assert apoz["layer2.0.conv1"].shape == (32,) and 0 < float(apoz["layer2.0.conv1"].mean()) < 1
    for ranker in ("apoz", "mean"):
        (mask,) = rank_pruner(model, activation_spec(ranker), images=images)
        assert mask.indices == (3,), ranker  # the dead filter goes first
    (mask,) = rank_pruner(model, activation_spec("apoz", 0.5), images=images)
    assert 9 not in mask.indices and len(mask.indices) == 8
    with pytest.raises(PrunebenchError, match="needs training images"):
        rank_pruner(model, activation_spec("apoz"))


def test_activation_pruners_need_distillers_relu_name(tmp_path: Path) -> None:
    schedule = Schedule("s", str(tmp_path / "s.yaml"), (replace(activation_spec("apoz"),
                                                                layers=("layer2.0.downsample.0",)),), ())
    with pytest.raises(ScheduleError, match="which Distiller names 'layer2.0.downsample.0'; resnet20 has no such ReLU"):
        check_layers(schedule, build_model("resnet20", 10), "resnet20")


def test_random_ranking_is_reproducible_and_differs_per_layer() -> None:
    model = build_model("resnet20", 10)
    spec = PrunerSpec("rnd", "RandomRankedFilterPruner", "filters", "random", 0.5,
                      ("layer1.0.conv1", "layer1.1.conv1", "layer1.2.conv1"))
    first, again = rank_pruner(model, spec), rank_pruner(build_model("resnet20", 10), spec)
    assert [m.indices for m in first] == [m.indices for m in again]
    assert len({m.indices for m in first}) == 3 and all(len(m.indices) == 8 for m in first)


# --- fold_batchnorm and regularized parameters -----------------------------------------------------------------


def test_fold_batchnorm_ranks_filters_as_inference_sees_them() -> None:
    torch.manual_seed(6)
    model = build_model("resnet20", 10)
    pairs = {conv: bn for conv, bn in conv_batchnorms(model).items()}
    modules = dict(model.named_modules())
    assert pairs["layer1.0.conv1"] is modules["layer1.0.bn1"] and pairs["conv1"] is modules["bn1"]
    assert pairs["layer2.0.downsample.0"] is modules["layer2.0.downsample.1"]
    assert len(pairs) == 21  # every conv; the fc has none
    conv, bn = model.layer1[0].conv1, model.layer1[0].bn1
    with torch.no_grad():
        conv.weight[5] *= 10  # the largest filter by its own norm ...
        bn.weight[5] = 1e-3  # ... scaled almost to nothing by its BN
        bn.running_var.uniform_(0.5, 2.0)
    spec = PrunerSpec("p", "L1RankedStructureParameterPruner", "filters", "l1", 1 / 16, ("layer1.0.conv1",))
    (plain,) = rank_pruner(model, spec)
    (folded,) = rank_pruner(model, spec, fold_batchnorm=True)
    assert plain.indices != (5,) and folded.indices == (5,)
    expected = conv.weight * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1)
    assert torch.allclose(ranked_weights(model, ("layer1.0.conv1", "fc"), True)["layer1.0.conv1"], expected)
    assert torch.equal(ranked_weights(model, ("fc",), True)["fc"], model.fc.weight)


def test_regularized_parameters_must_exist(tmp_path: Path) -> None:
    text = """\
regularizers:
  r: {class: GroupLassoRegularizer, reg_regims: {WHAT: [0.1, Filters]}}
policies:
  - regularizer: {instance_name: r}
    epochs: [0]
"""
    for name, message in (("layer1.0.bn9.weight", "resnet20 has no parameter 'layer1.0.bn9.weight'"),
                          ("layer1.0.bn1.weight", "group lasso over filters needs a conv weight")):
        schedule = write_schedule(tmp_path, text.replace("WHAT", name))
        with pytest.raises(ScheduleError, match=f"regularizers.r.reg_regims.{name}: {message}"):
            check_layers(schedule, build_model("resnet20", 10), "resnet20")
