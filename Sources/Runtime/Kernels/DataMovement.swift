import Graph

// The loops shared by the data-movement kernels (Transpose, Slice, Split, Gather, Expand, Tile,
// Pad, Resize's nearest mode, DepthToSpace, …). They never look at values: every dtype moves as an
// unsigned integer of its width, so one specialized loop per width serves all element types.

/// A loop over elements of one width. `run(elementSize:)` calls `run(as:)` with `UInt8`,
/// `UInt16`, `UInt32`, `UInt64` or `Element16`, each a specialized copy of the loop.
protocol ElementMove {
  func run<T: BitwiseCopyable>(as type: T.Type)
}

/// A 16-byte element (complex128), moved as two words.
struct Element16: BitwiseCopyable {
  var low: UInt64
  var high: UInt64
}

extension ElementMove {
  /// Runs the loop for `size`-byte elements (every width an `NDArray` holds).
  func run(elementSize size: Int) {
    switch size {
    case 1: run(as: UInt8.self)
    case 2: run(as: UInt16.self)
    case 4: run(as: UInt32.self)
    case 8: run(as: UInt64.self)
    case 16: run(as: Element16.self)
    default: preconditionFailure("no element mover for \(size)-byte elements")
    }
  }
}

/// Row-major positions of `dims` in order, from a starting position, with the element offset
/// `Σ index[k]·strides[k]` of each.
struct Odometer {
  let dims: [Int]
  let strides: [Int]
  private(set) var index: [Int]
  private(set) var offset = 0

  /// Starts at linear position `start` (< the product of `dims`, which are all positive).
  init(dims: [Int], strides: [Int], start: Int = 0) {
    self.dims = dims
    self.strides = strides
    index = [Int](repeating: 0, count: dims.count)
    var rest = start
    for d in stride(from: dims.count - 1, through: 0, by: -1) {
      index[d] = rest % dims[d]
      rest /= dims[d]
      offset += index[d] * strides[d]
    }
  }

  @inline(__always)
  mutating func advance() {
    var d = dims.count - 1
    while d >= 0 {
      index[d] += 1
      offset += strides[d]
      if index[d] < dims[d] { return }
      offset -= strides[d] * dims[d]
      index[d] = 0
      d -= 1
    }
  }
}

/// Elements read from a source through arbitrary strides into a contiguous row-major output:
///
///     out[i0, …, i(r−1)] = source[offset + Σ ik · strides[k]]
///
/// which is a transpose (permuted strides), a strided slice (scaled strides, negative for negative
/// steps), a broadcast (stride 0) or a tile (a stride-0 axis before each axis). Output dims of
/// extent 1 are dropped and adjacent dims that are adjacent in the source too are merged.
struct StridedLayout {
  /// The output shape as given.
  let shape: [Int]
  let count: Int
  /// Coalesced loop dims, outermost first, and their source strides; empty for one element.
  private(set) var dims: [Int] = []
  private(set) var strides: [Int] = []
  let offset: Int

  init(shape: [Int], strides sourceStrides: [Int], offset: Int = 0) {
    precondition(shape.count == sourceStrides.count)
    self.shape = shape
    self.offset = offset
    count = ShapeArithmetic.product(shape)
    guard count > 0 else { return }
    for (n, s) in zip(shape, sourceStrides) where n != 1 {
      if let last = strides.last, last == s * n {
        dims[dims.count - 1] *= n
        strides[strides.count - 1] = s
      } else {
        dims.append(n)
        strides.append(s)
      }
    }
  }

  /// Whether the output is the source's elements `offset ..< offset + count` in order (a view).
  var isContiguous: Bool { count == 0 || dims.isEmpty || (dims.count == 1 && strides[0] == 1) }
}

/// Runs a `StridedLayout` over a source and a destination.
struct StridedCopy: ElementMove {
  let layout: StridedLayout
  let source: UnsafeRawPointer
  let destination: UnsafeMutableRawPointer
  let threads: Int

  /// Elements each thread takes at least.
  static let grain = 1 << 15
  /// Tile side of the blocked transpose.
  static let tile = 32

  func run<T: BitwiseCopyable>(as type: T.Type) {
    let count = layout.count
    guard count > 0 else { return }
    let src = source.assumingMemoryBound(to: T.self) + layout.offset
    let dst = destination.assumingMemoryBound(to: T.self)
    let dims = layout.dims
    let strides = layout.strides
    let r = dims.count
    guard r > 0 else {
      dst[0] = src[0]
      return
    }
    let n = dims[r - 1]
    let step = strides[r - 1]
    if step != 1 && step != 0, r > 1, let j = strides[..<(r - 1)].lastIndex(of: 1) {
      transposeBlocked(src, dst, contiguousAxis: j)
      return
    }
    if r == 1 {
      // One row: split it.
      Parallel.forEach(count: n, threads: threads, grain: Self.grain) { range in
        Self.row(src + range.lowerBound * step, step, dst + range.lowerBound, range.count)
      }
      return
    }
    let outerDims = Array(dims[..<(r - 1)])
    let outerStrides = Array(strides[..<(r - 1)])
    Parallel.forEach(count: count / n, threads: threads, grain: max(1, Self.grain / n)) { rows in
      var odometer = Odometer(dims: outerDims, strides: outerStrides, start: rows.lowerBound)
      for row in rows {
        Self.row(src + odometer.offset, step, dst + row * n, n)
        odometer.advance()
      }
    }
  }

  @inline(__always)
  private static func row<T>(_ from: UnsafePointer<T>, _ step: Int, _ to: UnsafeMutablePointer<T>, _ n: Int) {
    // Wrapping arithmetic: an overflow check in the index keeps the loop from vectorizing.
    switch step {
    case 1: to.update(from: from, count: n)
    case 0: to.update(repeating: from[0], count: n)
    case -1: for i in 0..<n { to[i] = from[0 &- i] }
    default: for i in 0..<n { to[i] = from[i &* step] }
    }
  }

  /// The output's last axis reads the source with a stride while output axis `j` reads it
  /// contiguously: copy tile by tile, so that both sides stay in cache.
  private func transposeBlocked<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, contiguousAxis j: Int) {
    let dims = layout.dims
    let strides = layout.strides
    let r = dims.count
    let n = dims[r - 1]
    let step = strides[r - 1]
    let outStrides = ShapeArithmetic.strides(dims)
    let others = (0..<(r - 1)).filter { $0 != j }
    let otherCount = others.reduce(1) { $0 * dims[$1] }
    let nj = dims[j]
    let outJ = outStrides[j]
    let b = Self.tile
    let tilesJ = (nj + b - 1) / b
    Parallel.forEach(count: otherCount * tilesJ, threads: threads, grain: max(1, Self.grain / (b * n))) { items in
      for item in items {
        var rest = item / tilesJ
        var from = 0
        var to = 0
        for k in others.reversed() {
          let i = rest % dims[k]
          rest /= dims[k]
          from += i * strides[k]
          to += i * outStrides[k]
        }
        let j0 = (item % tilesJ) * b
        let j1 = min(nj, j0 + b)
        var k0 = 0
        while k0 < n {
          let k1 = min(n, k0 + b)
          // Four output rows at a time: each step reads four adjacent source elements.
          var jj = j0
          while jj + 4 <= j1 {
            let s = src + from + jj
            let d0 = dst + to + jj &* outJ
            let (d1, d2, d3) = (d0 + outJ, d0 + 2 &* outJ, d0 + 3 &* outJ)
            for kk in k0..<k1 {
              let p = s + kk &* step
              (d0[kk], d1[kk], d2[kk], d3[kk]) = (p[0], p[1], p[2], p[3])
            }
            jj += 4
          }
          while jj < j1 {
            let s = src + from + jj
            let d = dst + to + jj &* outJ
            for kk in k0..<k1 { d[kk] = s[kk &* step] }
            jj += 1
          }
          k0 = k1
        }
      }
    }
  }
}

/// Output elements picked per axis through index maps (offsets into the source, in elements,
/// one map per output axis; the sum over axes addresses the element), or `fill` where any map
/// holds −1: Pad, and Resize in nearest mode.
struct IndexMapCopy: ElementMove {
  let maps: [[Int]]
  let source: UnsafeRawPointer
  let destination: UnsafeMutableRawPointer
  /// The fill element's bytes; needed when a map holds −1.
  let fill: UnsafeRawPointer?
  let threads: Int

  func run<T: BitwiseCopyable>(as type: T.Type) {
    let count = maps.reduce(1) { $0 * $1.count }
    guard count > 0 else { return }
    let src = source.assumingMemoryBound(to: T.self)
    let dst = destination.assumingMemoryBound(to: T.self)
    let fillValue: T = fill.map { $0.loadUnaligned(as: T.self) } ?? src[0]
    let r = maps.count
    guard r > 0 else {
      dst[0] = src[0]
      return
    }
    let last = maps[r - 1]
    let n = last.count
    // The longest run of the last map reading consecutive elements (a pad's interior): copied whole.
    var (runStart, runLength) = (0, 0)
    var i = 0
    while i < n {
      var j = i + 1
      if last[i] >= 0 { while j < n && last[j] == last[j - 1] + 1 { j += 1 } }
      if last[i] >= 0 && j - i > runLength { (runStart, runLength) = (i, j - i) }
      i = j
    }
    let runEnd = runStart + runLength
    let outer = maps[..<(r - 1)].map(\.count)
    Parallel.forEach(count: count / n, threads: threads, grain: max(1, StridedCopy.grain / n)) { rows in
      var index = [Int](repeating: 0, count: r - 1)
      var rest = rows.lowerBound
      for a in stride(from: r - 2, through: 0, by: -1) {
        index[a] = rest % outer[a]
        rest /= outer[a]
      }
      for row in rows {
        var base = 0
        var outside = false
        for a in 0..<(r - 1) {
          let m = maps[a][index[a]]
          if m < 0 {
            outside = true
            break
          }
          base += m
        }
        let to = dst + row * n
        if outside {
          to.update(repeating: fillValue, count: n)
        } else {
          for o in 0..<runStart {
            let m = last[o]
            to[o] = m < 0 ? fillValue : src[base &+ m]
          }
          if runLength > 0 { (to + runStart).update(from: src + base + last[runStart], count: runLength) }
          for o in runEnd..<n {
            let m = last[o]
            to[o] = m < 0 ? fillValue : src[base &+ m]
          }
        }
        var a = r - 2
        while a >= 0 {
          index[a] += 1
          if index[a] < outer[a] { break }
          index[a] = 0
          a -= 1
        }
      }
    }
  }
}

/// Helpers of the data-movement kernels.
enum DataMovement {
  /// A new output array, or an error naming the shape when it cannot be allocated.
  static func allocate(_ dtype: DType, _ shape: [Int], _ context: KernelContext) throws(RuntimeError) -> NDArray {
    try checkAllocatable(dtype, shape, context)
    return NDArray(uninitialized: dtype, shape: shape)
  }

  /// An error naming the shape when an output of `dtype` and `shape` cannot be allocated.
  static func checkAllocatable(_ dtype: DType, _ shape: [Int], _ context: KernelContext) throws(RuntimeError) {
    guard NDArray.canAllocate(dtype, shape: shape) else {
      throw context.error("cannot allocate an output of type \(dtype) and shape \(describe(shape: shape))")
    }
  }

  /// `x`'s elements laid out by `shape`, `strides` and `offset` (see `StridedLayout`): a view of
  /// `x` when they are a contiguous run of it, else a copy.
  static func gather(
    _ x: NDArray, shape: [Int], strides: [Int], offset: Int = 0, threads: Int
  ) -> NDArray {
    let layout = StridedLayout(shape: shape, strides: strides, offset: offset)
    if layout.count > 0 && layout.isContiguous {
      return x.slice(elements: offset..<(offset + layout.count), shape: shape)
    }
    var y = NDArray(uninitialized: x.dtype, shape: shape)
    guard layout.count > 0 else { return y }
    x.withUnsafeBytes { src in
      y.withUnsafeMutableBytes { dst in
        StridedCopy(layout: layout, source: src.baseAddress!, destination: dst.baseAddress!, threads: threads)
          .run(elementSize: x.elementSize)
      }
    }
    return y
  }

  /// `x` with its axes permuted: output axis i is input axis `perm[i]` (a valid permutation).
  static func permute(_ x: NDArray, _ perm: [Int], threads: Int) -> NDArray {
    let strides = ShapeArithmetic.strides(x.shape)
    return gather(x, shape: perm.map { x.shape[$0] }, strides: perm.map { strides[$0] }, threads: threads)
  }

  /// The elements of an int32 or int64 array as Ints; nil for other types.
  static func integers(_ x: NDArray) -> [Int]? {
    switch x.dtype {
    case .int64: return x.withUnsafeBufferPointer(of: Int64.self) { $0.map { Int($0) } }
    case .int32: return x.withUnsafeBufferPointer(of: Int32.self) { $0.map { Int($0) } }
    default: return nil
    }
  }

  /// Input `i` as a list of integers: int64 (or also int32 when `int32` is true), 1-D (or a
  /// scalar when `scalar` is true).
  static func integerInput(
    _ context: KernelContext, _ i: Int, name: String, int32: Bool = true, scalar: Bool = false
  ) throws(RuntimeError) -> [Int] {
    let x = try context.input(i)
    guard x.dtype == .int64 || (int32 && x.dtype == .int32), let values = integers(x) else {
      throw context.error("\(name) (input \(i)) must be int64\(int32 ? " or int32" : ""); got \(x.dtype)")
    }
    guard x.rank == 1 || (scalar && x.rank == 0) else {
      throw context.error("\(name) (input \(i)) must be 1-D; got shape \(describe(shape: x.shape))")
    }
    return values
  }

  /// Axes in `-rank..<rank` as distinct non-negative axes, or an error naming `what`.
  static func normalize(
    axes: [Int], rank: Int, _ what: String, _ context: KernelContext
  ) throws(RuntimeError) -> [Int] {
    var seen = Set<Int>()
    var out: [Int] = []
    for axis in axes {
      guard let a = ShapeArithmetic.normalize(axis: axis, rank: rank) else {
        throw context.error("\(what) \(axis) is out of range for rank \(rank)")
      }
      guard seen.insert(a).inserted else { throw context.error("\(what) \(axis) is repeated") }
      out.append(a)
    }
    return out
  }

  /// A one-element array of `dtype` holding `value` (converted as a C cast would; bool is
  /// `value != 0`); nil for dtypes that are not numbers.
  static func scalar(_ value: Double, _ dtype: DType) -> NDArray? {
    func integer<T: FixedWidthInteger & TensorElement>(_: T.Type) -> NDArray {
      let v = value.isNaN ? 0 : max(min(value.rounded(.towardZero), Double(T.max)), Double(T.min))
      return NDArray(scalar: v >= Double(T.max) ? T.max : T(v))
    }
    switch dtype {
    case .float: return NDArray(scalar: Float(value))
    case .double: return NDArray(scalar: value)
    case .int64: return integer(Int64.self)
    case .int32: return integer(Int32.self)
    case .int16: return integer(Int16.self)
    case .int8: return integer(Int8.self)
    case .uint64: return integer(UInt64.self)
    case .uint32: return integer(UInt32.self)
    case .uint16: return integer(UInt16.self)
    case .uint8: return integer(UInt8.self)
    case .bool: return NDArray(scalar: value != 0)
    default: return nil
    }
  }
}
