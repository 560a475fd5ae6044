"""Launch configurations, chosen in one place for every kernel of the backend.

>>> elementwise(1000, multiprocessors=2)
((4,), (256,))
"""
from __future__ import annotations

BLOCK = 256          # threads per block for elementwise kernels
WAVES = 8            # blocks per multiprocessor before a grid-stride loop takes over


def elementwise(n: int, multiprocessors: int) -> tuple[tuple, tuple]:
    """(grid, block) for a grid-stride loop over ``n`` elements."""
    blocks = max(1, min((n + BLOCK - 1) // BLOCK, multiprocessors * WAVES * 4))
    return (blocks,), (BLOCK,)


def row_block(k: int, limit: int = 256) -> int:
    """Threads for a block that folds rows of ``k`` elements: a power of two, at least a
    warp, at most ``limit``."""
    threads = 32
    while threads < k and threads < limit:
        threads *= 2
    return threads


def rows(m: int, k: int, multiprocessors: int, limit: int = 256) -> tuple[tuple, tuple]:
    """(grid, block): one block per row (rows beyond the grid loop), a block sized to k."""
    return (max(1, min(m, 65535 * 4)),), (row_block(k, limit),)


def short_reduction(m: int, k: int) -> bool:
    """Whether rows are short enough for one thread per row (no block-wide combine): a
    handful of elements, or a single row of few elements."""
    return k <= 16 or (k <= 64 and m >= 4 * BLOCK)


def reduction(m: int, k: int, multiprocessors: int) -> tuple[tuple, tuple, int]:
    """(grid, block, chunks): rows of ``k`` elements split into ``chunks`` so that few long
    rows still fill the device (a second pass combines the chunks)."""
    threads = row_block(k)
    chunks = 1
    want = multiprocessors * WAVES
    if m < want and k > threads * 16:
        chunks = min((want + m - 1) // m, (k + threads * 16 - 1) // (threads * 16), 65535)
    return (max(1, min(m, 65535 * 4)), chunks), (threads,), chunks


# --- fused NN kernels (ops_nn.py)
WARP_ROW_LIMIT = 1024   # rows up to this length are folded by one warp, longer by a block
ROWS_PER_BLOCK = 4      # warps (rows) per block in the one-warp-per-row layout


def row_groups(m: int, k: int, multiprocessors: int) -> tuple[tuple, tuple]:
    """(grid, block) for kernels where a group of threads folds each of ``m`` rows of ``k``
    elements: block (32, rows) gives each warp a row; block (threads,) gives each block a
    row (rows beyond the grid loop in both)."""
    cap = multiprocessors * WAVES * 4
    if k <= WARP_ROW_LIMIT:
        rows_per_block = min(ROWS_PER_BLOCK, max(m, 1))
        blocks = (m + rows_per_block - 1) // rows_per_block
        return (max(1, min(blocks, cap)),), (32, rows_per_block)
    return (max(1, min(m, cap)),), (row_block(k, 512),)


COLUMN_TILE = (32, 8)   # block of column-sum kernels: 32 columns, 8 rows at a time


def column_sums(m: int, k: int, multiprocessors: int) -> tuple[tuple, tuple, int]:
    """(grid, block, chunks) for summing an (m, k) matrix over its rows: each block owns
    32 columns of one of ``chunks`` slices of the rows (a second pass adds the slices)."""
    width, height = COLUMN_TILE
    column_blocks = (k + width - 1) // width
    want = multiprocessors * WAVES
    chunks = max(1, min((want + column_blocks - 1) // column_blocks,
                        (m + height * 8 - 1) // (height * 8), 65535))
    return (max(1, column_blocks), chunks), COLUMN_TILE, chunks


def attention_tiles(e: int, ev: int, itemsize: int, max_shared: int,
                    with_values: bool) -> tuple[int, int, int, int]:
    """(block_m, block_n, threads, shared bytes) of the attention kernels: a tile of
    ``block_m`` queries against tiles of ``block_n`` keys, as large as fits in shared
    memory (queries, keys with one pad column, scores, per-row statistics; with
    ``with_values`` also a value tile and the output accumulators)."""
    for tile in (32, 16, 8, 4, 2, 1):
        words = tile * e + tile * (e + 1) + tile * tile + 3 * tile
        if with_values:
            words += 2 * tile * ev
        if words * itemsize <= max_shared:
            threads = 128 if tile >= 16 else 64 if tile >= 8 else 32
            return tile, tile, threads, words * itemsize
    raise ValueError(f"attention: head dims {e} and {ev} need more shared memory than the "
                     f"{max_shared} bytes a block has")


MATMUL_TILE = 16        # tiled matrix products: 16 x 16 outputs per block, one per thread


def batched_tiles(rows: int, cols: int, batch: int) -> tuple[tuple, tuple]:
    """(grid, block) of a tiled batched matrix product with ``rows`` x ``cols`` outputs
    per matrix (batches beyond the grid loop)."""
    t = MATMUL_TILE
    return ((max(1, (cols + t - 1) // t), max(1, (rows + t - 1) // t),
             max(1, min(batch, 65535))), (t, t))


MULTI_TENSOR_CHUNK = 4096   # elements per block-step of multi-tensor kernels


def multi_tensor(chunks: int, multiprocessors: int) -> tuple[tuple, tuple]:
    """(grid, block) for a kernel walking ``chunks`` chunks of several tensors."""
    return (max(1, min(chunks, multiprocessors * WAVES * 4)),), (BLOCK,)


# --- GEMM (gemm.cu)
GEMM_THREADS = 256   # gemm_tiled_*: a 16 x 16 grid of threads per block
GEMM_NAIVE = 16      # gemm_naive_*: 16 x 16 threads, one per element of C
GRID_YZ = 65535      # the most blocks along grid y and z (kernels loop beyond)


def gemm_tiled(m: int, n: int, batch: int, tile_m: int, tile_n: int) -> tuple[tuple, tuple]:
    """(grid, block) for gemm_tiled_*: one block per tile_m x tile_n tile of C (x: N-tiles,
    y: M-tiles, z: batch items)."""
    return ((max(1, -(-n // tile_n)), max(1, min(-(-m // tile_m), GRID_YZ)),
             max(1, min(batch, GRID_YZ))), (GEMM_THREADS,))


def gemm_naive(m: int, n: int, batch: int) -> tuple[tuple, tuple]:
    """(grid, block) for gemm_naive_*: one thread per element of C."""
    return ((max(1, -(-n // GEMM_NAIVE)), max(1, min(-(-m // GEMM_NAIVE), GRID_YZ)),
             max(1, min(batch, GRID_YZ))), (GEMM_NAIVE, GEMM_NAIVE))


# --- sorts, scans and argmax (ops_indexing.py)
SORT_TILE = 2048     # elements a block sorts in shared memory (keys + int indices: 24 KB)
SHORT_ROW = 64       # rows up to this long: one thread per row (scans, argmax), no barriers
RANK_SORT = 128      # rows up to this long are sorted by counting ranks, no barriers


def short_rows(k: int) -> bool:
    """Whether rows of ``k`` elements are best walked by one thread each."""
    return k <= SHORT_ROW


def sort_tile(k: int, key_bytes: int, tile: int = SORT_TILE) -> tuple[int, int, int, int]:
    """(tile, width, threads, shared bytes) for sorting rows of ``k`` elements: tiles of
    ``tile`` elements, each in a bitonic network of ``width`` slots (a power of two) with
    one thread per compared pair."""
    tile = min(tile, max(k, 1))
    width = 2
    while width < tile:
        width *= 2
    return tile, width, row_block(width // 2, 1024), width * (key_bytes + 4)


# --- selective scan (scan.cu)
SCAN_MAX_STATE = 64  # states per channel: 32 lanes x SCAN_MAX_K registers (scan.cu)
SCAN_WARPS = 4       # warps per block


def scan_lanes(n: int) -> int:
    """Lanes of a warp that walk one channel of the selective scan together, each keeping
    some of its ``n`` states: a power of two >= n, at most 32."""
    lanes = 1
    while lanes < n and lanes < 32:
        lanes *= 2
    return lanes


def scan_channels(channels: int, lanes: int, multiprocessors: int) -> tuple[tuple, tuple]:
    """(grid, block) of the selective scan kernels: blocks of (32, warps), each warp
    walking 32 // lanes channels (channels beyond the grid loop)."""
    per_warp = 32 // lanes
    warps = max(1, -(-channels // per_warp))
    block_warps = min(SCAN_WARPS, warps)
    blocks = min(-(-warps // block_warps), multiprocessors * WAVES * 4)
    return (max(1, blocks),), (32, block_warps)
