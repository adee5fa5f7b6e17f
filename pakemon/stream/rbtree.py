"""Linux's red-black tree (lib/rbtree.c), shape for shape.

linux-current keeps a direction's out-of-order segments in a sorted list,
but Linux keeps them in an rbtree, and ``tcp_data_queue_ofo`` decides what
to do with a new segment at the *first* queued segment its descent from the
root meets that it touches: coalesce into one it starts right after, drop it
inside one, replace one with the same start. Which segment that is depends
on the tree's shape, and the shape on every insertion, rebalancing and
erasure before. Segments whose ends grew by coalescing overlap the ones
after them, so different shapes can keep different bytes (found by
tests/integration/live_fuzz.py against the live kernel). This module is
the kernel's insertion and erasure, rotation for rotation
(``__rb_insert``, ``__rb_erase_augmented``, ``____rb_erase_color`` and
``rb_replace_node`` without augmentation), so the descent meets the same
segments in the same order.
"""

from __future__ import annotations


class Node:
    __slots__ = ("parent", "left", "right", "red", "item")

    def __init__(self, item):
        self.parent = self.left = self.right = None
        self.red = True
        self.item = item


class RBTree:
    __slots__ = ("root", "size")

    def __init__(self):
        self.root = None
        self.size = 0

    # --------------------------------------------------------------- reading

    def first(self):
        n = self.root
        if n is None:
            return None
        while n.left is not None:
            n = n.left
        return n

    def last(self):
        n = self.root
        if n is None:
            return None
        while n.right is not None:
            n = n.right
        return n

    @staticmethod
    def next(n):
        if n.right is not None:
            n = n.right
            while n.left is not None:
                n = n.left
            return n
        p = n.parent
        while p is not None and n is p.right:
            n, p = p, p.parent
        return p

    @staticmethod
    def prev(n):
        if n.left is not None:
            n = n.left
            while n.right is not None:
                n = n.right
            return n
        p = n.parent
        while p is not None and n is p.left:
            n, p = p, p.parent
        return p

    def items(self) -> list:
        out = []
        n = self.first()
        while n is not None:
            out.append(n.item)
            n = self.next(n)
        return out

    # --------------------------------------------------------------- changes

    def _change_child(self, old, new, parent):
        if parent is not None:
            if parent.left is old:
                parent.left = new
            else:
                parent.right = new
        else:
            self.root = new

    def _rotate_set_parents(self, old, new, red):
        """``__rb_rotate_set_parents``: new takes old's place and colour."""
        parent = old.parent
        new.parent = parent
        new.red = old.red
        old.parent = new
        old.red = red
        self._change_child(old, new, parent)

    def link(self, node, parent, right: bool) -> None:
        """``rb_link_node`` then ``rb_insert_color``: ``node`` becomes the
        ``right`` (else left) child of ``parent`` (None: the root)."""
        node.parent = parent
        node.left = node.right = None
        node.red = True
        if parent is None:
            self.root = node
        elif right:
            parent.right = node
        else:
            parent.left = node
        self.size += 1
        self._insert_color(node)

    def _insert_color(self, node):
        parent = node.parent
        while True:
            if parent is None:
                node.parent = None
                node.red = False
                break
            if not parent.red:
                break
            gparent = parent.parent
            tmp = gparent.right
            if parent is not tmp:  # parent is gparent's left child
                if tmp is not None and tmp.red:
                    tmp.red = False
                    parent.red = False
                    node = gparent
                    parent = node.parent
                    node.red = True
                    continue
                tmp = parent.right
                if node is tmp:
                    tmp = node.left
                    parent.right = tmp
                    node.left = parent
                    if tmp is not None:
                        tmp.parent = parent
                        tmp.red = False
                    parent.parent = node
                    parent.red = True
                    parent = node
                    tmp = node.right
                gparent.left = tmp
                parent.right = gparent
                if tmp is not None:
                    tmp.parent = gparent
                    tmp.red = False
                self._rotate_set_parents(gparent, parent, True)
                break
            else:
                tmp = gparent.left
                if tmp is not None and tmp.red:
                    tmp.red = False
                    parent.red = False
                    node = gparent
                    parent = node.parent
                    node.red = True
                    continue
                tmp = parent.left
                if node is tmp:
                    tmp = node.right
                    parent.left = tmp
                    node.right = parent
                    if tmp is not None:
                        tmp.parent = parent
                        tmp.red = False
                    parent.parent = node
                    parent.red = True
                    parent = node
                    tmp = node.left
                gparent.right = tmp
                parent.left = gparent
                if tmp is not None:
                    tmp.parent = gparent
                    tmp.red = False
                self._rotate_set_parents(gparent, parent, True)
                break

    def replace(self, victim, new) -> None:
        """``rb_replace_node``: ``new`` takes ``victim``'s place and colour."""
        parent = victim.parent
        self._change_child(victim, new, parent)
        if victim.left is not None:
            victim.left.parent = new
        if victim.right is not None:
            victim.right.parent = new
        new.parent, new.left, new.right, new.red = parent, victim.left, victim.right, victim.red

    def erase(self, node) -> None:
        """``rb_erase``."""
        self.size -= 1
        child = node.right
        tmp = node.left
        if tmp is None:
            parent = node.parent
            self._change_child(node, child, parent)
            if child is not None:
                child.parent = parent
                child.red = node.red
                rebalance = None
            else:
                rebalance = parent if not node.red else None
        elif child is None:
            parent = node.parent
            tmp.parent = parent
            tmp.red = node.red
            self._change_child(node, tmp, parent)
            rebalance = None
        else:
            successor = child
            tmp = child.left
            if tmp is None:
                parent = successor
                child2 = successor.right
            else:
                while tmp is not None:
                    parent = successor
                    successor = tmp
                    tmp = tmp.left
                child2 = successor.right
                parent.left = child2
                successor.right = child
                child.parent = successor
            tmp = node.left
            successor.left = tmp
            tmp.parent = successor
            gp = node.parent
            self._change_child(node, successor, gp)
            if child2 is not None:
                child2.parent = parent
                child2.red = False
                rebalance = None
            else:
                rebalance = parent if not successor.red else None
            successor.parent = gp
            successor.red = node.red
        if rebalance is not None:
            self._erase_color(rebalance)

    def _erase_color(self, parent):
        node = None
        while True:
            sibling = parent.right
            if node is not sibling:  # node is parent's left child
                if sibling.red:
                    tmp1 = sibling.left
                    parent.right = tmp1
                    sibling.left = parent
                    tmp1.parent = parent
                    tmp1.red = False
                    self._rotate_set_parents(parent, sibling, True)
                    sibling = tmp1
                tmp1 = sibling.right
                if tmp1 is None or not tmp1.red:
                    tmp2 = sibling.left
                    if tmp2 is None or not tmp2.red:
                        sibling.parent = parent
                        sibling.red = True
                        if parent.red:
                            parent.red = False
                        else:
                            node = parent
                            parent = node.parent
                            if parent is not None:
                                continue
                        break
                    tmp1 = tmp2.right
                    sibling.left = tmp1
                    tmp2.right = sibling
                    parent.right = tmp2
                    if tmp1 is not None:
                        tmp1.parent = sibling
                        tmp1.red = False
                    tmp1 = sibling
                    sibling = tmp2
                tmp2 = sibling.left
                parent.right = tmp2
                sibling.left = parent
                tmp1.parent = sibling
                tmp1.red = False
                if tmp2 is not None:
                    tmp2.parent = parent
                self._rotate_set_parents(parent, sibling, False)
                break
            else:
                sibling = parent.left
                if sibling.red:
                    tmp1 = sibling.right
                    parent.left = tmp1
                    sibling.right = parent
                    tmp1.parent = parent
                    tmp1.red = False
                    self._rotate_set_parents(parent, sibling, True)
                    sibling = tmp1
                tmp1 = sibling.left
                if tmp1 is None or not tmp1.red:
                    tmp2 = sibling.right
                    if tmp2 is None or not tmp2.red:
                        sibling.parent = parent
                        sibling.red = True
                        if parent.red:
                            parent.red = False
                        else:
                            node = parent
                            parent = node.parent
                            if parent is not None:
                                continue
                        break
                    tmp1 = tmp2.left
                    sibling.right = tmp1
                    tmp2.left = sibling
                    parent.left = tmp2
                    if tmp1 is not None:
                        tmp1.parent = sibling
                        tmp1.red = False
                    tmp1 = sibling
                    sibling = tmp2
                tmp2 = sibling.right
                parent.left = tmp2
                sibling.right = parent
                tmp1.parent = sibling
                tmp1.red = False
                if tmp2 is not None:
                    tmp2.parent = parent
                self._rotate_set_parents(parent, sibling, False)
                break
