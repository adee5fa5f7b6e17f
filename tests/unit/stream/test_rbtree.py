"""The kernel's rbtree port: red-black invariants and Linux's shapes."""

import random

import pytest

from pakemon.stream.rbtree import Node, RBTree


def check(t: RBTree) -> list:
    """Assert the red-black and parent-link invariants; return keys in order."""
    assert t.root is None or (t.root.parent is None and not t.root.red)

    def walk(n):
        if n is None:
            return 1, []
        for c in (n.left, n.right):
            if c is not None:
                assert c.parent is n
                assert not (n.red and c.red), "two reds in a row"
        bl, kl = walk(n.left)
        br, kr = walk(n.right)
        assert bl == br, "black heights differ"
        return bl + (0 if n.red else 1), kl + [n.item] + kr

    keys = walk(t.root)[1]
    assert keys == sorted(keys)
    assert len(keys) == t.size
    return keys


def insert(t, key):
    """Insert as a BST by key (the way tcp_data_queue_ofo links a segment)."""
    cur, parent, right = t.root, None, False
    while cur is not None:
        parent = cur
        cur, right = (cur.left, False) if key < cur.item else (cur.right, True)
    node = Node(key)
    t.link(node, parent, right)
    return node


def shape(n):
    if n is None:
        return None
    return (n.item, "R" if n.red else "B", shape(n.left), shape(n.right))


def test_ascending_inserts_rotate_as_linux_does():
    t = RBTree()
    for k in range(1, 6):
        insert(t, k)
    # 1 2 3: a left rotation at 1; 4: a colour flip; 5: a rotation at 3
    assert shape(t.root) == (2, "B", (1, "B", None, None),
                             (4, "B", (3, "R", None, None), (5, "R", None, None)))


def test_erase_uses_the_successor_and_rebalances():
    """Shapes worked through lib/rbtree.c by hand."""
    t = RBTree()
    nodes = {k: insert(t, k) for k in range(1, 8)}
    # the root (2) has two children: its successor 3 takes its place, and
    # the black 3 leaving 4's left side rotates 4's right subtree left
    t.erase(nodes[2])
    assert shape(t.root) == (3, "B", (1, "B", None, None),
                             (6, "R", (4, "B", None, (5, "R", None, None)),
                              (7, "B", None, None)))
    # a black leaf: a red sibling rotates first, then a rotation at 3
    t.erase(nodes[1])
    assert shape(t.root) == (6, "B", (4, "R", (3, "B", None, None), (5, "B", None, None)),
                             (7, "B", None, None))
    assert check(t) == [3, 4, 5, 6, 7]


@pytest.mark.parametrize("seed", range(40))
def test_random_inserts_erasures_and_replacements_keep_the_invariants(seed):
    rng = random.Random(seed)
    t = RBTree()
    live = {}
    for _ in range(300):
        op = rng.random()
        if op < 0.55 or not live:
            k = rng.randrange(10_000)
            if k not in live:
                live[k] = insert(t, k)
        elif op < 0.85:
            k = rng.choice(list(live))
            t.erase(live.pop(k))
        else:
            k = rng.choice(list(live))
            new = Node(k)
            t.replace(live[k], new)
            live[k] = new
        assert check(t) == sorted(live)
    # first/last/next/prev walk the same order
    seq = []
    n = t.first()
    while n is not None:
        seq.append(n.item)
        n = t.next(n)
    assert seq == sorted(live)
    back = []
    n = t.last()
    while n is not None:
        back.append(n.item)
        n = t.prev(n)
    assert back == sorted(live, reverse=True)
