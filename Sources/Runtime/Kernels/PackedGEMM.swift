import CKernels
import Graph

/// The convolutions' own single-precision matrix product (CKernels' `rb_gemm_*`), independent of
/// which kernels the system BLAS picks: `C = act(A·B + bias)` for a constant A packed once.
///
/// A (a convolution's M/G×K weights per group) is packed when the kernel is built, in panels of
/// `rowsPerTile` rows stored column by column; B (the input itself for a 1×1 convolution, the
/// im2col matrix of a 1-D or 2-D one, made straight from the input, or a stored im2col matrix for
/// 3-D) is packed per call, block by block, into a scratch buffer; a register-blocked
/// micro-kernel (AVX-512: 12×32 tiles in 24 zmm accumulators; AVX2+FMA: 6×16 in 12 ymm) makes each
/// tile of C, starting from the bias and applying ReLU or Clip before the tile is stored. The
/// instruction set is detected at run time; without AVX2+FMA (or off x86-64) `detected` is `.none`
/// and callers use `BLAS.sgemm`. See docs/runtime.md ("Convolution GEMM").
enum PackedGEMM {
  enum ISA: Int32, Sendable, CaseIterable {
    case none = 0
    case avx2 = 1
    case avx512 = 2
  }

  /// The best micro-kernel this processor runs.
  static let detected: ISA = ISA(rawValue: rb_gemm_isa()) ?? .none

  /// The instruction sets this processor runs, best first (tests exercise each).
  static var supported: [ISA] { ISA.allCases.filter { $0 != .none && $0.rawValue <= detected.rawValue }.reversed() }

  /// Fewer output columns than this go to BLAS: a tile would be mostly padding.
  static let minimumColumns = 16

  /// `groups` row-major matrices of `rows`×`depth` (consecutive in memory), packed for `isa`.
  final class PackedMatrix: @unchecked Sendable {
    let isa: ISA
    let groups: Int, rows: Int, depth: Int
    let rowsPerTile: Int, columnsPerTile: Int
    /// Floats per packed group.
    let groupStride: Int
    private let storage: UnsafeMutablePointer<Float>

    init(isa: ISA, _ a: UnsafePointer<Float>, groups: Int, rows: Int, depth: Int) {
      precondition(isa != .none, "PackedGEMM: no micro-kernel to pack for")
      self.isa = isa
      (self.groups, self.rows, self.depth) = (groups, rows, depth)
      rowsPerTile = Int(rb_gemm_mr(isa.rawValue))
      columnsPerTile = Int(rb_gemm_nr(isa.rawValue))
      groupStride = Int(rb_gemm_packed_a_count(isa.rawValue, rows, depth))
      storage = UnsafeMutableRawPointer.allocate(
        byteCount: max(groups * groupStride, 1) * MemoryLayout<Float>.stride, alignment: 64
      ).bindMemory(to: Float.self, capacity: max(groups * groupStride, 1))
      for g in 0..<groups {
        rb_gemm_pack_a(isa.rawValue, rows, depth, a + g * rows * depth, depth, storage + g * groupStride)
      }
    }

    deinit { storage.deallocate() }

    func group(_ g: Int) -> UnsafePointer<Float> { UnsafePointer(storage + g * groupStride) }
  }

  /// The right operand B (depth×n): a stored row-major matrix, or the im2col matrix of a 1-D/2-D
  /// convolution's input, which the product packs straight from the input.
  enum Operand {
    case matrix(UnsafePointer<Float>, ldb: Int)
    case convolution(rb_conv2d_input)
  }

  /// `C[rows×n] ← act(A_g·B + bias)` for group `g` of `a`, B `depth`×n (row stride ldb), C row
  /// stride ldc; bias (rows floats) optional. Returns whether `activation` was applied (ReLU and
  /// Clip are, in the tile; the caller applies any other afterwards).
  @discardableResult
  static func multiply(
    _ a: PackedMatrix, group g: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>,
    ldc: Int, bias: UnsafePointer<Float>?, activation: FusedActivation?, threads: Int
  ) -> Bool {
    multiply(a, group: g, n: n, b: .matrix(b, ldb: ldb), c: c, ldc: ldc, bias: bias, activation: activation, threads: threads)
  }

  @discardableResult
  static func multiply(
    _ a: PackedMatrix, group g: Int, n: Int, b operand: Operand, c: UnsafeMutablePointer<Float>,
    ldc: Int, bias: UnsafePointer<Float>?, activation: FusedActivation?, threads: Int
  ) -> Bool {
    let (code, lo, hi, applied): (Int32, Float, Float, Bool) =
      switch activation {
      case .relu: (Int32(RB_ACT_RELU), 0, 0, true)
      case .clip(let lo, let hi): (Int32(RB_ACT_CLIP), lo, hi, true)
      default: (Int32(RB_ACT_NONE), 0, 0, false)
      }
    let (m, k) = (a.rows, a.depth)
    guard m > 0, n > 0 else { return applied }
    let packed = a.group(g)
    let workspace = Int(rb_gemm_workspace_count(a.isa.rawValue))
    func run(rows: Range<Int>, columns: Range<Int>) {
      withScratch(workspace, of: Float.self) { w in
        switch operand {
        case .matrix(let b, let ldb):
          rb_gemm_run(
            a.isa.rawValue, m, n, k, packed, b, ldb, c, ldc, bias, code, lo, hi, rows.lowerBound, rows.upperBound,
            columns.lowerBound, columns.upperBound, w)
        case .convolution(var input):
          rb_gemm_run_conv2d(
            a.isa.rawValue, m, k, packed, &input, c, ldc, bias, code, lo, hi, rows.lowerBound, rows.upperBound,
            columns.lowerBound, columns.upperBound, w)
        }
      }
    }
    let (mr, nr) = (a.rowsPerTile, a.columnsPerTile)
    let (rowPanels, columnPanels) = ((m + mr - 1) / mr, (n + nr - 1) / nr)
    // Split across threads by column panels (each thread packs only its columns of B) when there
    // are enough of them, else by row panels; not at all for small products.
    if threads <= 1 || m * n * k < 1 << 18 {
      run(rows: 0..<m, columns: 0..<n)
    } else if columnPanels >= 2 * threads || columnPanels >= rowPanels {
      Parallel.forEach(count: columnPanels, threads: threads) { r in
        run(rows: 0..<m, columns: r.lowerBound * nr..<min(n, r.upperBound * nr))
      }
    } else {
      Parallel.forEach(count: rowPanels, threads: threads) { r in
        run(rows: r.lowerBound * mr..<min(m, r.upperBound * mr), columns: 0..<n)
      }
    }
    return applied
  }
}
