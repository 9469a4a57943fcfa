"""On-top checks, relation validation and the stacking score on hand-built block configurations."""
import numpy as np
import pytest

from diffuser_core.tasks.kuka.tasks import (BLOCK_NAMES, BLOCK_SIZE, STATE_DIM, Relation, block_slice, check_task,
                                           on_top, placement_order, poses_from_state, relations_from_order,
                                           sample_goal, sample_relations, score, score_trajectory,
                                           validate_relations)

UPRIGHT = (0.0, 0.0, 0.0, 1.0)
HALF = BLOCK_SIZE / 2


def quat_about_x(degrees):
    half = np.radians(degrees) / 2
    return (np.sin(half), 0.0, 0.0, np.cos(half))


def quat_about_z(degrees):
    half = np.radians(degrees) / 2
    return (0.0, 0.0, np.sin(half), np.cos(half))


def scene(**positions):
    """Blocks at given (x, y, level) with level 0 on the table; unnamed blocks spread on the table."""
    spots = iter([(0.4, -0.3), (0.4, 0.3), (0.7, -0.3), (0.7, 0.3)])
    poses = {}
    for name in BLOCK_NAMES:
        x, y, level = positions.get(name, (*next(spots), 0))
        poses[name] = (np.array([x, y, HALF + level * BLOCK_SIZE]), np.array(UPRIGHT))
    return poses


def tower(order, x=0.55, y=0.0):
    return scene(**{name: (x, y, level) for level, name in enumerate(order)})


def test_stacked_block_is_on_top_and_not_the_reverse():
    poses = tower(["red", "green"])
    assert on_top(poses, "green", "red")
    assert not on_top(poses, "red", "green")
    assert not on_top(poses, "blue", "red")


def test_small_misalignment_is_tolerated_but_side_by_side_is_not():
    poses = tower(["red", "green"])
    poses["green"] = (poses["green"][0] + (0.01, 0.005, 0.002), poses["green"][1])
    assert on_top(poses, "green", "red")
    poses = scene(red=(0.55, 0.0, 0), green=(0.55 + BLOCK_SIZE, 0.0, 0))
    assert not on_top(poses, "green", "red") and not on_top(poses, "red", "green")
    poses = scene(red=(0.55, 0.0, 0), green=(0.55 + 0.03, 0.0, 1))  # overhangs more than half a block
    assert not on_top(poses, "green", "red")


def test_floating_or_sunken_block_is_not_on_top():
    poses = tower(["red", "green"])
    position, quat = poses["green"]
    assert not on_top({**poses, "green": (position + (0, 0, 0.03), quat)}, "green", "red")
    assert not on_top({**poses, "green": (position - (0, 0, 0.02), quat)}, "green", "red")
    assert not on_top(scene(red=(0.55, 0, 0), green=(0.55, 0, 2)), "green", "red")  # a gap of one block


def test_tilted_block_is_not_on_top_but_yawed_or_rolled_over_block_is():
    poses = tower(["red", "green"])
    position = poses["green"][0]
    assert not on_top({**poses, "green": (position, np.array(quat_about_x(30)))}, "green", "red")
    assert not on_top({**poses, "red": (poses["red"][0], np.array(quat_about_x(30)))}, "green", "red")
    assert on_top({**poses, "green": (position, np.array(quat_about_x(90)))}, "green", "red")
    assert on_top({**poses, "green": (position, np.array(quat_about_z(30)))}, "green", "red")


def state_of(poses, attached=()):
    state = np.zeros(STATE_DIM)
    for index, name in enumerate(BLOCK_NAMES):
        position, quat = poses[name]
        state[block_slice(index)] = [*position, *quat, float(name in attached)]
    return state


def test_state_vector_round_trips_and_held_blocks_never_count():
    poses = tower(["red", "green"])
    decoded, attached = poses_from_state(state_of(poses))
    assert attached == set() and np.allclose(decoded["green"][0], poses["green"][0])
    assert on_top(state_of(poses), "green", "red")
    assert not on_top(state_of(poses, attached={"green"}), "green", "red")
    with pytest.raises(ValueError, match="shape"):
        poses_from_state(np.zeros(38))


def test_on_top_reads_a_world_like_object_and_rejects_unknown_blocks():
    class FakeWorld:
        attached_block = "green"

        def block_poses(self):
            return tower(["red", "green"])

    assert not on_top(FakeWorld(), "green", "red")
    FakeWorld.attached_block = None
    assert on_top(FakeWorld(), "green", "red")
    with pytest.raises(ValueError, match="unknown block"):
        on_top(FakeWorld(), "purple", "red")


@pytest.mark.parametrize("relations, message", [
    ([Relation("red", "red")], "on itself"),
    ([Relation("red", "purple")], "unknown block 'purple'"),
    ([("red", "green"), ("green", "red")], "cycle"),
    ([("red", "green"), ("green", "blue"), ("blue", "red")], "cycle"),
    ([("red", "blue"), ("green", "blue")], "blue has two blocks on it"),
    ([("red", "blue"), ("red", "green")], "red cannot be on two blocks"),
    ([("red", "blue"), ("red", "blue")], "given twice"),
    (["red"], "a relation is"),
])
def test_validate_relations_rejects_impossible_goals(relations, message):
    errors = validate_relations(relations, BLOCK_NAMES)
    assert any(message in error for error in errors), errors


def test_validate_relations_accepts_towers_and_separate_stacks():
    assert validate_relations(relations_from_order(["red", "green", "blue", "yellow"]), BLOCK_NAMES) == []
    assert validate_relations([("red", "green"), ("blue", "yellow")], BLOCK_NAMES) == []
    assert validate_relations([], BLOCK_NAMES) == []


def test_placement_order_builds_bottom_up():
    relations = [Relation("yellow", "blue"), Relation("blue", "green"), Relation("red", "green")]
    with pytest.raises(ValueError, match="two blocks on it"):
        placement_order(relations)
    ordered = placement_order([Relation("yellow", "blue"), Relation("blue", "green"), Relation("green", "red")])
    assert [str(r) for r in ordered] == ["green on red", "blue on green", "yellow on blue"]


def test_unconditional_score_counts_placements_in_the_tallest_tower():
    assert score(tower(["red", "green", "blue", "yellow"]), "stack") == (3, 3, 100.0)
    satisfied, total, value = score(tower(["blue", "red", "yellow"]), "stack")
    assert (satisfied, total) == (2, 3) and value == pytest.approx(200 / 3)
    two_stacks = scene(red=(0.5, 0.2, 0), green=(0.5, 0.2, 1), blue=(0.6, -0.2, 0), yellow=(0.6, -0.2, 1))
    assert score(two_stacks, "stack")[:2] == (1, 3)
    assert score(scene(), "stack") == (0, 3, 0.0)


def test_conditional_score_needs_the_given_order():
    built = tower(["red", "green", "blue", "yellow"])
    assert score(built, "stack", relations_from_order(["red", "green", "blue", "yellow"])) == (3, 3, 100.0)
    assert score(built, "stack", relations_from_order(["red", "blue", "green", "yellow"]))[:2] == (0, 3)
    assert score(built, "stack", relations_from_order(["red", "green", "yellow", "blue"]))[:2] == (1, 3)


def test_rearrange_score_is_the_fraction_of_goal_relations():
    poses = scene(red=(0.5, 0.2, 0), green=(0.5, 0.2, 1))
    assert score(poses, "rearrange", [("green", "red"), ("yellow", "blue")]) == (1, 2, 50.0)


def test_bad_tasks_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="unknown task"):
        score(scene(), "juggle")
    with pytest.raises(ValueError, match="needs at least one relation"):
        check_task("rearrange", [])
    with pytest.raises(ValueError, match="use task 'rearrange'"):
        check_task("stack", [("red", "green")])
    with pytest.raises(ValueError, match="cycle"):
        score(scene(), "rearrange", [("red", "green"), ("green", "red")])


def test_trajectory_score_follows_the_reference_progress_rule():
    goal = relations_from_order(["red", "green", "blue", "yellow"])
    only_second = scene(green=(0.55, 0, 0), blue=(0.55, 0, 1))
    first_two = tower(["red", "green", "blue"])
    # The second relation held first, before the first: it is credited only when seen after it.
    assert score_trajectory([only_second, tower(["red", "green"])], "stack", goal)[:2] == (1, 3)
    assert score_trajectory([only_second, first_two], "stack", goal)[:2] == (2, 3)
    # Unconditional: relations seen at any time count, even if the tower fell later.
    assert score_trajectory([tower(["red", "green", "blue", "yellow"]), scene()], "stack") == (3, 3, 100.0)


def test_sampled_goals_are_valid():
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(50):
        relations = sample_relations(rng)
        assert validate_relations(relations) == []
        counts.add(len(relations))
        task, conditional = sample_goal(rng, "conditional")
        assert task == "stack" and check_task(task, conditional) == conditional and len(conditional) == 3
    assert counts == {2, 3}
    assert sample_goal(rng, "unconditional") == ("stack", [])
    assert sample_goal(rng, "rearrange")[0] == "rearrange"
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        sample_goal(rng, "stack")


def test_the_reference_above_rule_counts_any_block_higher_within_a_slab_width():
    from diffuser_core.tasks.kuka.tasks import REFERENCE_RULE, stacked_relations

    offset = scene(red=(0.55, 0.0, 0), green=(0.70, 0.0, 2))  # 15 cm aside, two blocks up, floating
    assert stacked_relations(offset, REFERENCE_RULE) == {Relation("green", "red")}
    assert not stacked_relations(offset)  # this project's rule wants it resting directly on top
    assert not stacked_relations(scene(red=(0.55, 0.0, 0), green=(0.76, 0.0, 2)), REFERENCE_RULE)  # 21 cm aside
    assert not stacked_relations(scene(red=(0.55, 0.0, 0), green=(0.55, 0.0, 0.9)), REFERENCE_RULE)  # 4.5 cm up
    # Unconditional: the most blocks one block is above; a tower of four is above three.
    assert score(tower(["red", "green", "blue", "yellow"]), "stack", (), REFERENCE_RULE) == (3, 3, 100.0)
    bridge = scene(red=(0.55, 0.0, 0), green=(0.65, 0.0, 0), blue=(0.60, 0.0, 1))  # blue over two blocks
    assert score(bridge, "stack", (), REFERENCE_RULE)[:2] == (2, 3)
    assert score(bridge, "stack")[:2] == (0, 3)
    held = state_from_poses(tower(["red", "green"]), attached="green")
    assert not stacked_relations(held, REFERENCE_RULE)


def state_from_poses(poses, attached=None):
    from diffuser_core.tasks.kuka.tasks import state_from_parts

    return state_from_parts(np.zeros(7), poses, attached)


def test_reference_rearrangement_goals_are_two_stacks_of_two_or_a_tower_of_four():
    """StackEnv.reset's generator: half of its goals two separate two-block stacks, half one tower."""
    from diffuser_core.tasks.kuka.tasks import check_task, reference_rearrangement, sample_goal

    rng, shapes = np.random.default_rng(0), {"two stacks": 0, "tower": 0}
    for _ in range(400):
        relations = reference_rearrangement(rng)
        check_task("rearrange", relations)  # valid: each block on at most one, no cycle
        tops, bottoms = {r.top for r in relations}, {r.bottom for r in relations}
        if len(relations) == 2:
            assert not tops & bottoms  # never a chain of three
            shapes["two stacks"] += 1
        else:
            assert len(relations) == 3 and relations[0].top == relations[1].bottom  # built bottom up
            shapes["tower"] += 1
    assert 150 < shapes["two stacks"] < 250 and shapes["tower"] == 400 - shapes["two stacks"]
    task, relations = sample_goal(np.random.default_rng(1), "rearrange", reference=True)
    assert task == "rearrange" and relations == reference_rearrangement(np.random.default_rng(1))


def test_the_references_reward_counts_a_block_above_a_held_one_and_its_check_after_a_plan_releases_all():
    """StackEnv.compute_reward reads the upper block's attached flag for both blocks (attach_j uses
    index i); rearrangement_kuka_planning_eval.execute sets every attachment to 0 after a plan and
    computes the reward again."""
    from diffuser_core.tasks.kuka.tasks import (REFERENCE_REWARD_RULE, REFERENCE_RULE, released, stacked_relations,
                                                state_from_parts)

    poses = {"red": ((0.6, 0.0, 0.09), (0, 0, 0, 1)), "green": ((0.6, 0.0, 0.03), (0, 0, 0, 1)),
             "blue": ((0.0, 0.6, 0.03), (0, 0, 0, 1)), "yellow": ((0.0, -0.6, 0.03), (0, 0, 0, 1))}
    state = state_from_parts(np.zeros(7), poses, attached="green")  # the lower block held
    assert Relation("red", "green") in stacked_relations(state, REFERENCE_REWARD_RULE)
    assert Relation("red", "green") not in stacked_relations(state, REFERENCE_RULE)
    top_held = state_from_parts(np.zeros(7), poses, attached="red")
    assert Relation("red", "green") not in stacked_relations(top_held, REFERENCE_REWARD_RULE)
    assert Relation("red", "green") in stacked_relations(released(top_held), REFERENCE_REWARD_RULE)
    assert not released(top_held)[[block_slice(i).stop - 1 for i in range(4)]].any()
