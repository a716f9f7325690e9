# The pair schedule's synchronization (templates/decode_wgmma_bf16_pair.cu) as an event model:
# two warpgroups (each as one actor), TMA copies and wgmma groups completing
# at random times, named barriers, mbarrier parities. Random interleavings
# over items of 0..9 tiles with ring bases carried across items. Checks: no
# deadlock; every read sees the content it expects (the right tile, landed,
# its tail cleared before a product reads it; the right pair's P and row
# state); no copy or write lands on data a reader still needs. Each
# warpgroup's steps transcribe the template's decode_item: change both
# together. MUT=a..g injects a known bug (a refill or a hand-off moved
# before what it must wait for, a missing tail clear, the next item's
# copies started before both warpgroups' last products retire): each must
# FAIL, or the model checks nothing.
#   python3 bench/pair_model/protocol.py; MUT=a python3 bench/pair_model/protocol.py
import os, random, sys
MUT = os.environ.get('MUT', '')

STAGES = 2

class Fail(Exception):
    pass

class Sim:
    def __init__(self, rng):
        self.rng = rng
        # slot halves: 'L' (left latent), 'R' (right latent + RoPE)
        self.content = {}        # (slot, half) -> (item, tile) landed
        self.pending_copy = []   # [(slot, half, (item, tile))] issued, not landed
        self.completions = {(s, h): 0 for s in range(STAGES) for h in 'LR'}
        self.need = {}           # (slot, half) -> reads still owed to the landed tile
        self.cleared = {}        # (slot, half) -> (item, tile) whose tail was zeroed
        self.inflight = {0: [], 1: []}   # per warpgroup: committed groups, each a list of regions
        self.open = {0: [], 1: []}
        self.bar = {}            # named barrier id -> set of warpgroups arrived in this generation
        self.bar_gen = {}
        self.smem = {}           # generic regions: 'P0', 'P1', 'M', 'F0', 'F1' -> version
        self.reads_owed = {}     # generic region -> readers still owed to its version

    # ---- TMA ----
    def issue_copy(self, wg, item, tile, base, half):
        slot = (base + tile) % STAGES
        key = (slot, half)
        for g in self.inflight[0] + self.inflight[1] + [self.open[0], self.open[1]]:
            if key in [r[:2] for r in g]:
                raise Fail(f"copy of {item}:{tile}{half} over slot {slot} while a product reads it")
        if self.need.get(key, 0) > 0:
            raise Fail(f"copy of {item}:{tile}{half} over slot {slot}: {self.need[key]} reads of "
                       f"{self.content.get(key)} still owed")
        if any(p[:2] == key for p in self.pending_copy):
            raise Fail(f"two copies in flight into {key}")
        self.pending_copy.append((slot, half, (item, tile)))

    def land_copy(self, i):
        slot, half, what = self.pending_copy.pop(i)
        self.content[(slot, half)] = what
        self.completions[(slot, half)] += 1
        self.need[(slot, half)] = 2   # its QK and its product
        self.cleared.pop((slot, half), None)

    def mbar_ready(self, item, tile, base, half):
        slot = (base + tile) % STAGES
        parity = ((base + tile) // STAGES) & 1
        n = self.completions[(slot, half)]
        if n % 2 == parity:
            return False
        if n != (base + tile) // STAGES + 1:
            raise Fail(f"mbarrier parity aliasing: {item}:{tile}{half} sees completion {n}")
        if self.content[(slot, half)] != (item, tile):
            raise Fail(f"wait for {item}:{tile}{half} found {self.content[(slot, half)]}")
        return True

    # ---- wgmma ----
    def read_tile(self, wg, item, tile, base, half, needs_clear):
        slot = (base + tile) % STAGES
        key = (slot, half)
        if self.content.get(key) != (item, tile):
            raise Fail(f"wg{wg} reads {item}:{tile}{half} but slot {slot} holds {self.content.get(key)}")
        if needs_clear and self.cleared.get(key) != (item, tile):
            raise Fail(f"wg{wg}'s product reads {item}:{tile}{half} before its tail is zeroed")
        self.need[key] -= 1
        if self.need[key] < 0:
            raise Fail(f"{item}:{tile}{half} read more than twice")
        self.open[wg].append((slot, half, 'tile'))

    def read_p(self, wg, name, version):
        self.generic_read(wg, name, version)
        self.open[wg].append((name, None, 'p'))

    def commit(self, wg):
        self.inflight[wg].append(self.open[wg])
        self.open[wg] = []

    # ---- generic smem ----
    def generic_write(self, wg, name, version, readers):
        for w in (0, 1):
            for g in self.inflight[w] + [self.open[w]]:
                if (name, None, 'p') in g:
                    raise Fail(f"wg{wg} writes {name} while a product reads it")
        if self.reads_owed.get(name, 0) > 0:
            raise Fail(f"wg{wg} overwrites {name} {self.smem.get(name)} with {version}: "
                       f"{self.reads_owed[name]} reads owed")
        self.smem[name] = version
        self.reads_owed[name] = readers

    def generic_read(self, wg, name, version):
        if self.smem.get(name) != version:
            raise Fail(f"wg{wg} reads {name} {self.smem.get(name)}, expected {version}")
        self.reads_owed[name] -= 1

    def clear(self, item, tile, base):
        slot = (base + tile) % STAGES
        for half in 'LR':
            key = (slot, half)
            if self.content.get(key) != (item, tile):
                raise Fail(f"clear_tail of {item}:{tile} finds {self.content.get(key)}")
            for w in (0, 1):
                for g in self.inflight[w] + [self.open[w]]:
                    if key in [r[:2] for r in g]:
                        raise Fail(f"clear_tail of {item}:{tile} under a product")
            self.cleared[key] = (item, tile)


def warpgroup(sim, wg, items):
    """Yields conditions (callables returning True when the step may run) and
    runs the step's effects after; mirrors decode_item per warpgroup."""
    base = 0

    def start_item(item, tiles, base):
        # WG0's copier: the item's first two tiles, whole
        for t in (0, 1):
            if t < tiles:
                for h in 'LR':
                    sim.issue_copy(0, item, t, base, h)

    for item, tiles in enumerate(items):
        if item == 0:   # the first pop (next_work_item); later items were popped and started ahead
            yield ('barrier_all', ('item', item))
            if wg == 0:
                start_item(item, tiles, base)
        # init of M by warpgroup 0's threads (tid < 64), then __syncthreads x2
        if wg == 0:
            sim.generic_write(wg, 'M', (item, -1), readers=1 if tiles > 0 else 0)   # read by WG0 at pair 0
        yield ('barrier_all', ('q', item))
        yield ('barrier_all', ('rope', item))
        last = tiles - 1

        def wait_tile(t, h):
            return ('cond', lambda: sim.mbar_ready(item, t, base, h))

        # prologue
        if wg == 0 and tiles > 0:
            for h in 'LR':
                yield wait_tile(0, h)
                sim.read_tile(wg, item, 0, base, h, False)
            sim.commit(wg)
        elif wg == 1 and tiles > 1:
            for h in 'RL':
                yield wait_tile(1, h)
                sim.read_tile(wg, item, 1, base, h, False)
            sim.commit(wg)
        yield ('wgwait', 0)

        for u in range(0, tiles, 2):
            k = (item, u)
            has_other, has_next, has_next_other = u + 1 < tiles, u + 2 < tiles, u + 3 < tiles
            if wg == 0:
                if u == last and MUT != 'f':
                    sim.clear(item, u, base)
                prev = (item, u - 2) if u > 0 else (item, -1)
                sim.generic_read(wg, 'M', prev)
                sim.generic_write(wg, 'M', ('m0', k), readers=1)
                sim.generic_write(wg, 'F0', k, readers=1)
                yield ('arrive', 'M0')
                sim.read_tile(wg, item, u, base, 'L', u == last)   # own product
                sim.commit(wg)
                if MUT != 'e':
                    yield ('wgwait', 0)
                if MUT != 'c':
                    yield ('sync', 'M1')
                sim.generic_read(wg, 'F1', k)
                sim.generic_write(wg, 'P0', k, readers=1)
                yield ('arrive', 'P0')
                if has_other:
                    yield ('sync', 'P1')
                    if has_next:   # the left refill just in time: after the P(u+1) hand-off
                        sim.issue_copy(wg, item, u + 2, base, 'L')
                    sim.read_p(wg, 'P1', k)
                    sim.read_tile(wg, item, u + 1, base, 'L', u + 1 == last)
                    sim.commit(wg)
                elif has_next:
                    sim.issue_copy(wg, item, u + 2, base, 'L')
                if has_next:
                    yield wait_tile(u + 2, 'L')
                    sim.read_tile(wg, item, u + 2, base, 'L', False)
                    sim.commit(wg)
                    if has_other:
                        if MUT != 'a':
                            yield ('wgwait', 1)
                        if has_next_other:
                            sim.issue_copy(wg, item, u + 3, base, 'L')
                    yield wait_tile(u + 2, 'R')
                    sim.read_tile(wg, item, u + 2, base, 'R', False)
                    sim.commit(wg)
                yield ('wgwait', 0)
            else:
                if has_other and u + 1 == last:
                    sim.clear(item, u + 1, base)
                yield ('sync', 'M0')
                sim.generic_read(wg, 'M', ('m0', k))
                sim.generic_read(wg, 'F0', k)
                sim.generic_write(wg, 'M', (item, u), readers=1)   # m1: WG0's next pair (or nobody)
                if not has_next:
                    sim.reads_owed['M'] = 0   # the epilogue reads it after __syncthreads
                sim.generic_write(wg, 'F1', k, readers=1)
                yield ('arrive', 'M1')
                if has_other:
                    sim.generic_write(wg, 'P1', k, readers=1)
                    sim.read_tile(wg, item, u + 1, base, 'R', u + 1 == last)   # own product
                    sim.commit(wg)
                if MUT != 'd':
                    yield ('sync', 'P0')
                sim.read_p(wg, 'P0', k)
                sim.read_tile(wg, item, u, base, 'R', u == last)
                sim.commit(wg)
                if has_other:
                    yield ('arrive', 'P1')
                    yield ('wgwait', 1)
                    if has_next_other:
                        sim.issue_copy(wg, item, u + 3, base, 'R')
                if MUT != 'b':
                    yield ('wgwait', 0)
                if has_next:
                    sim.issue_copy(wg, item, u + 2, base, 'R')
                if has_next_other:
                    for h in 'RL':
                        yield wait_tile(u + 3, h)
                        sim.read_tile(wg, item, u + 3, base, h, False)
                    sim.commit(wg)
                    yield ('wgwait', 0)
        # epilogue: __syncthreads; the next item's pop (a barrier), its first
        # two tiles and Q (Q's smem holds P(u+1): both warpgroups write it);
        # the output; __syncthreads
        early = MUT == 'g' and wg == 0 and item + 1 < len(items)
        if early:   # (bug: before the barriers, while WG1's products may still read)
            start_item(item + 1, items[item + 1], base + tiles)
        yield ('barrier_all', ('epi1', item))
        if item + 1 < len(items):
            yield ('barrier_all', ('item', item + 1))
            if wg == 0 and not early:
                start_item(item + 1, items[item + 1], base + tiles)
            sim.generic_write(wg, 'P1', ('q', item + 1, wg), readers=0)
        yield ('barrier_all', ('epi2', item))
        base += tiles


def run(items, seed):
    rng = random.Random(seed)
    sim = Sim(rng)
    progs = {w: warpgroup(sim, w, items) for w in (0, 1)}
    cur = {w: None for w in (0, 1)}
    done = {0: False, 1: False}
    all_bars = {}   # key -> set of warpgroups waiting

    def advance(w):
        try:
            cur[w] = next(progs[w])
        except StopIteration:
            done[w] = True
            cur[w] = None

    for w in (0, 1):
        advance(w)
    steps = 0
    while not (done[0] and done[1]):
        steps += 1
        if steps > 100000:
            raise Fail("no end")
        choices = []
        for w in (0, 1):
            op = cur[w]
            if op is None:
                continue
            kind = op[0]
            if kind == 'cond':
                if op[1]():
                    choices.append(('go', w))
            elif kind == 'wgwait':
                if len(sim.inflight[w]) <= op[1]:
                    choices.append(('go', w))
            elif kind == 'arrive':
                choices.append(('arrive', w))
            elif kind == 'sync':
                choices.append(('sync', w))
            elif kind == 'barrier_all':
                choices.append(('all', w))
        for i in range(len(sim.pending_copy)):
            choices.append(('land', i))
        for w in (0, 1):
            if sim.inflight[w]:
                choices.append(('retire', w))
        if not choices:
            raise Fail(f"deadlock: wg0 at {cur[0]}, wg1 at {cur[1]}")
        c = rng.choice(choices)
        if c[0] == 'land':
            sim.land_copy(c[1])
        elif c[0] == 'retire':
            sim.inflight[c[1]].pop(0)
        elif c[0] == 'go':
            advance(c[1])
        elif c[0] == 'arrive':
            w = c[1]; bid = cur[w][1]
            arrived = sim.bar.setdefault(bid, set())
            if w in arrived:
                raise Fail(f"wg{w} arrives twice at {bid} in one generation")
            arrived.add(w)
            if len(arrived) == 2:
                sim.bar[bid] = set(); sim.bar_gen[bid] = sim.bar_gen.get(bid, 0) + 1
            advance(w)
        elif c[0] == 'sync':
            w = c[1]; bid = cur[w][1]
            arrived = sim.bar.setdefault(bid, set())
            if ('wait', w) not in sim.bar_gen:
                if w in arrived:
                    raise Fail(f"wg{w} syncs twice at {bid}")
                arrived.add(w)
                sim.bar_gen[('wait', w)] = sim.bar_gen.get(bid, 0)
                if len(arrived) == 2:
                    sim.bar[bid] = set(); sim.bar_gen[bid] = sim.bar_gen.get(bid, 0) + 1
            if sim.bar_gen.get(bid, 0) > sim.bar_gen[('wait', w)]:
                del sim.bar_gen[('wait', w)]
                advance(w)
        elif c[0] == 'all':
            w = c[1]; key = cur[w][1]
            waiting = all_bars.setdefault(key, set())
            waiting.add(w)
            if len(waiting) == 2 and cur[0] is not None and cur[1] is not None \
                    and cur[0][:2] == cur[1][:2]:
                advance(0); advance(1)
    for key, n in sim.need.items():
        if n:
            raise Fail(f"reads owed at the end: {key} {n}")


if __name__ == '__main__':
    rng = random.Random(7)
    runs = 0
    for trial in range(3000):
        items = [rng.randint(0, 9) for _ in range(rng.randint(1, 4))]
        try:
            run(items, trial)
        except Fail as e:
            print(f"FAIL items {items} seed {trial}: {e}")
            sys.exit(1)
        runs += 1
    print(f"pair protocol: {runs} random interleavings of 1-4 items of 0-9 tiles: no deadlock, no race")
