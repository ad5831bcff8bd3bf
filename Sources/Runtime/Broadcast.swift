/// Multidirectional (numpy) broadcasting of two operands, planned once per call: the output shape,
/// and the fewest loop dimensions that cover it. Size-1 output dimensions are dropped and adjacent
/// dimensions in which each operand is either broadcast in both or present in both are merged, so
///
///     [N, C, H, W] + [C, 1, 1]  →  dims [N, C, H·W], strides A [C·H·W, H·W, 1], B [0, 1, 0]
///
/// and the innermost loop is contiguous (stride 1) or a broadcast scalar (stride 0) for each operand.
struct BinaryBroadcast {
  let outputShape: [Int]
  let count: Int
  /// Loop dimensions, outermost first; never empty.
  let dims: [Int]
  /// Element strides of each operand per loop dimension; 0 where it is broadcast.
  let stridesA: [Int]
  let stridesB: [Int]

  /// The broadcast shape of `a` and `b`, or nil when they do not broadcast.
  static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
      let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
      let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
      if da == db || db == 1 {
        out[i] = da
      } else if da == 1 {
        out[i] = db
      } else {
        return nil
      }
    }
    return out
  }

  init?(_ a: [Int], _ b: [Int]) {
    guard let out = Self.shape(a, b) else { return nil }
    outputShape = out
    count = ShapeArithmetic.product(out)
    let rank = out.count
    // Group dimensions by which operand is broadcast in them.
    var groups: [(size: Int, aBroadcast: Bool, bBroadcast: Bool)] = []
    for i in 0..<rank where out[i] != 1 {
      let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
      let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
      let (ab, bb) = (da == 1, db == 1)
      if let last = groups.last, last.aBroadcast == ab, last.bBroadcast == bb {
        groups[groups.count - 1].size *= out[i]
      } else {
        groups.append((out[i], ab, bb))
      }
    }
    if groups.isEmpty { groups = [(1, false, false)] }
    var sa = [Int](repeating: 0, count: groups.count)
    var sb = [Int](repeating: 0, count: groups.count)
    var runA = 1
    var runB = 1
    for g in stride(from: groups.count - 1, through: 0, by: -1) {
      if !groups[g].aBroadcast {
        sa[g] = runA
        runA *= groups[g].size
      }
      if !groups[g].bBroadcast {
        sb[g] = runB
        runB *= groups[g].size
      }
    }
    dims = groups.map(\.size)
    stridesA = sa
    stridesB = sb
  }

  /// Whether both operands have the output's shape (one flat loop).
  var isElementwise: Bool { dims.count == 1 && stridesA[0] == 1 && stridesB[0] == 1 }

  /// Length of the innermost loop.
  var rowLength: Int { dims[dims.count - 1] }
  var rowCount: Int { rowLength == 0 ? 0 : count / rowLength }

  /// Calls `body(offsetA, offsetB, offsetOut)` for rows `rows` of the output, in order; each row
  /// is `rowLength` elements, with operand steps `stridesA.last` and `stridesB.last`.
  func forEachRow(_ rows: Range<Int>, _ body: (Int, Int, Int) -> Void) {
    let outer = dims.count - 1
    guard outer > 0 else {
      for r in rows { body(0, 0, r * rowLength) }
      return
    }
    // Position of the first row in the outer dimensions.
    var index = [Int](repeating: 0, count: outer)
    var offA = 0
    var offB = 0
    var rest = rows.lowerBound
    for d in stride(from: outer - 1, through: 0, by: -1) {
      index[d] = rest % dims[d]
      rest /= dims[d]
      offA += index[d] * stridesA[d]
      offB += index[d] * stridesB[d]
    }
    for r in rows {
      body(offA, offB, r * rowLength)
      // Advance the odometer.
      var d = outer - 1
      while d >= 0 {
        index[d] += 1
        offA += stridesA[d]
        offB += stridesB[d]
        if index[d] < dims[d] { break }
        offA -= stridesA[d] * dims[d]
        offB -= stridesB[d] * dims[d]
        index[d] = 0
        d -= 1
      }
    }
  }

  /// `out[i] = F.apply(a[i], b[i])` over the broadcast shape, on up to `threads` threads.
  func apply<F: BinaryElementFunction>(
    _ f: F.Type, _ a: UnsafePointer<F.Input>, _ b: UnsafePointer<F.Input>, _ out: UnsafeMutablePointer<F.Output>,
    threads: Int
  ) {
    guard count > 0 else { return }
    let n = rowLength
    let (sa, sb) = (stridesA[dims.count - 1], stridesB[dims.count - 1])
    let grain = 1 << 15
    if rowCount == 1 {
      // One long row: split it.
      Parallel.forEach(count: n, threads: threads, grain: grain) { r in
        Self.row(f, a + r.lowerBound * sa, sa, b + r.lowerBound * sb, sb, out + r.lowerBound, r.count)
      }
      return
    }
    Parallel.forEach(count: rowCount, threads: threads, grain: max(1, grain / max(n, 1))) { rows in
      forEachRow(rows) { oa, ob, oy in Self.row(f, a + oa, sa, b + ob, sb, out + oy, n) }
    }
  }

  @inline(__always)
  private static func row<F: BinaryElementFunction>(
    _ f: F.Type, _ a: UnsafePointer<F.Input>, _ sa: Int, _ b: UnsafePointer<F.Input>, _ sb: Int,
    _ y: UnsafeMutablePointer<F.Output>, _ n: Int
  ) {
    switch (sa, sb) {
    case (1, 1): for i in 0..<n { y[i] = F.apply(a[i], b[i]) }
    case (0, 1):
      let s = a[0]
      for i in 0..<n { y[i] = F.apply(s, b[i]) }
    case (1, 0):
      let s = b[0]
      for i in 0..<n { y[i] = F.apply(a[i], s) }
    default:
      let v = F.apply(a[0], b[0])
      for i in 0..<n { y[i] = v }
    }
  }
}

/// An element function of two operands, applied by `BinaryBroadcast`. Conformers are generic
/// structs over the element type, so each use is specialized and inlined into the loop.
protocol BinaryElementFunction {
  associatedtype Input: TensorElement
  associatedtype Output: TensorElement
  static func apply(_ a: Input, _ b: Input) -> Output
}

extension NDArray {
  /// The array broadcast (unidirectionally) to `shape`; nil when it does not broadcast to it.
  /// Returns the array itself when the shape is already `shape`.
  func broadcast(to target: [Int]) -> NDArray? {
    if shape == target { return self }
    guard let plan = BinaryBroadcast(shape, target), plan.outputShape == target else { return nil }
    var out = NDArray(uninitialized: dtype, shape: target)
    let size = elementSize
    let n = plan.rowLength
    let step = plan.stridesA[plan.dims.count - 1]
    withUnsafeBytes { src in
      out.withUnsafeMutableBytes { dst in
        guard let s = src.baseAddress, let d = dst.baseAddress else { return }
        plan.forEachRow(0..<plan.rowCount) { oa, _, oy in
          let from = s + oa * size
          let to = d + oy * size
          if step == 1 {
            to.copyMemory(from: from, byteCount: n * size)
          } else {
            Self.fill(to, with: from, size: size, count: n)
          }
        }
      }
    }
    return out
  }

  /// Writes `count` copies of the `size`-byte element at `element` to `to`.
  private static func fill(_ to: UnsafeMutableRawPointer, with element: UnsafeRawPointer, size: Int, count: Int) {
    switch size {
    case 4: to.initializeMemory(as: UInt32.self, repeating: element.loadUnaligned(as: UInt32.self), count: count)
    case 8: to.initializeMemory(as: UInt64.self, repeating: element.loadUnaligned(as: UInt64.self), count: count)
    case 1: to.initializeMemory(as: UInt8.self, repeating: element.load(as: UInt8.self), count: count)
    case 2: to.initializeMemory(as: UInt16.self, repeating: element.loadUnaligned(as: UInt16.self), count: count)
    default: for i in 0..<count { (to + i * size).copyMemory(from: element, byteCount: size) }
    }
  }
}
