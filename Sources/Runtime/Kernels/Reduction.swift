import Graph

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// MARK: Elements

/// Element types the reductions run on: float32, double, int64, int32, and for ReduceMax and
/// ReduceMin also int8, uint8 and bool (as the bytes 0 and 1). Integer sums and products wrap.
protocol ReducibleElement: CastElement, Comparable {
  static var zero: Self { get }
  static var one: Self { get }
  /// −∞, or the type's minimum.
  static var lowest: Self { get }
  /// +∞, or the type's maximum.
  static var highest: Self { get }
  static func plus(_ a: Self, _ b: Self) -> Self
  static func times(_ a: Self, _ b: Self) -> Self
  static func absolute(_ a: Self) -> Self
  /// `sum / count`, 0 for no elements (onnxruntime's mean of nothing); integers truncate.
  static func mean(_ sum: Self, count: Int) -> Self
  static func squareRoot(_ a: Self) -> Self
  static func logarithm(_ a: Self) -> Self
}

extension Float: ReducibleElement {
  static var one: Float { 1 }
  static var lowest: Float { -.infinity }
  static var highest: Float { .infinity }
  @inline(__always) static func plus(_ a: Float, _ b: Float) -> Float { a + b }
  @inline(__always) static func times(_ a: Float, _ b: Float) -> Float { a * b }
  @inline(__always) static func absolute(_ a: Float) -> Float { abs(a) }
  @inline(__always) static func mean(_ sum: Float, count: Int) -> Float { count == 0 ? 0 : sum / Float(count) }
  @inline(__always) static func squareRoot(_ a: Float) -> Float { a.squareRoot() }
  @inline(__always) static func logarithm(_ a: Float) -> Float { ElementMath.log(a) }
}

extension Double: ReducibleElement {
  static var one: Double { 1 }
  static var lowest: Double { -.infinity }
  static var highest: Double { .infinity }
  @inline(__always) static func plus(_ a: Double, _ b: Double) -> Double { a + b }
  @inline(__always) static func times(_ a: Double, _ b: Double) -> Double { a * b }
  @inline(__always) static func absolute(_ a: Double) -> Double { abs(a) }
  @inline(__always) static func mean(_ sum: Double, count: Int) -> Double { count == 0 ? 0 : sum / Double(count) }
  @inline(__always) static func squareRoot(_ a: Double) -> Double { a.squareRoot() }
  @inline(__always) static func logarithm(_ a: Double) -> Double { log(a) }
}

/// Integers: wrapping arithmetic; square roots and logarithms computed in double and truncated
/// as Cast does.
protocol IntegerReducibleElement: ReducibleElement, FixedWidthInteger {}

extension IntegerReducibleElement {
  static var one: Self { 1 }
  static var lowest: Self { .min }
  static var highest: Self { .max }
  @inline(__always) static func plus(_ a: Self, _ b: Self) -> Self { a &+ b }
  @inline(__always) static func times(_ a: Self, _ b: Self) -> Self { a &* b }
  @inline(__always) static func absolute(_ a: Self) -> Self { a < 0 ? 0 &- a : a }
  @inline(__always) static func mean(_ sum: Self, count: Int) -> Self {
    count == 0 ? 0 : Self(truncatingIfNeeded: Int64(truncatingIfNeeded: sum) / Int64(count))
  }
  static func squareRoot(_ a: Self) -> Self { Self(castingFloating: Double(a).squareRoot()) }
  static func logarithm(_ a: Self) -> Self { Self(castingFloating: log(Double(a))) }
}

extension Int64: IntegerReducibleElement {}
extension Int32: IntegerReducibleElement {}
extension Int8: IntegerReducibleElement {}
extension UInt8: IntegerReducibleElement {}

// MARK: Reduce*

/// A Reduce* operator: elements are prepared (squared for ReduceL2), combined from `initial`,
/// and the result finished (square root for ReduceL2) with the count of reduced elements.
///
/// `evaluate` holds the loops in a default implementation, specialized per operation (see
/// `ArithmeticOperation`).
protocol ReductionOperation {
  /// The opset from which the axes are an input (with `noop_with_empty_axes`) rather than an
  /// attribute: 13 for ReduceSum, 18 for the others.
  static var axesInputOpset: Int { get }
  /// Whether int8, uint8 and bool inputs are accepted (ReduceMax, ReduceMin).
  static var acceptsBytes: Bool { get }
  /// Whether `prepare` and `finish` do anything.
  static var prepares: Bool { get }
  static var finishes: Bool { get }
  /// The result for no elements, before `finish`.
  static func initial<T: ReducibleElement>(_ t: T.Type) -> T
  static func prepare<T: ReducibleElement>(_ x: T) -> T
  static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T
  static func finish<T: ReducibleElement>(_ a: T, count: Int) -> T
  /// `x` reduced over `axes` (all when nil; negative count from the end).
  static func evaluate(_ x: NDArray, axes: [Int]?, keepDims: Bool, _ context: KernelContext) throws -> NDArray
}

extension ReductionOperation {
  static var axesInputOpset: Int { 18 }
  static var acceptsBytes: Bool { false }
  static var prepares: Bool { false }
  static var finishes: Bool { false }
  @inline(__always) static func prepare<T: ReducibleElement>(_ x: T) -> T { x }
  @inline(__always) static func finish<T: ReducibleElement>(_ a: T, count: Int) -> T { a }
}

/// What a reduction pass reads: the input's elements prepared (the first pass), or partial
/// results as they are (later passes).
protocol ReductionPass {
  static func load<Op: ReductionOperation, T: ReducibleElement>(_ op: Op.Type, _ x: T) -> T
}

enum FirstReductionPass: ReductionPass {
  @inline(__always) static func load<Op: ReductionOperation, T: ReducibleElement>(_ op: Op.Type, _ x: T) -> T {
    Op.prepare(x)
  }
}

enum LaterReductionPass: ReductionPass {
  @inline(__always) static func load<Op: ReductionOperation, T: ReducibleElement>(_ op: Op.Type, _ x: T) -> T { x }
}

extension ReductionOperation {
  static func evaluate(_ x: NDArray, axes: [Int]?, keepDims: Bool, _ context: KernelContext) throws -> NDArray {
    var reduced = [Bool](repeating: axes == nil, count: x.rank)
    for axis in axes ?? [] {
      guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
        throw context.error("axis \(axis) is out of range for rank \(x.rank)")
      }
      guard !reduced[a] else { throw context.error("axis \(axis) is repeated") }
      reduced[a] = true
    }
    let shape =
      keepDims
      ? x.shape.indices.map { reduced[$0] ? 1 : x.shape[$0] }
      : x.shape.indices.filter { !reduced[$0] }.map { x.shape[$0] }
    switch x.dtype {
    case .float: return reduce(Float.self, x, reduced, shape, context)
    case .double: return reduce(Double.self, x, reduced, shape, context)
    case .int64: return reduce(Int64.self, x, reduced, shape, context)
    case .int32: return reduce(Int32.self, x, reduced, shape, context)
    case .int8:
      guard acceptsBytes else { throw context.unsupportedType(x.dtype, input: 0) }
      return reduce(Int8.self, x, reduced, shape, context)
    case .uint8, .bool:
      guard acceptsBytes else { throw context.unsupportedType(x.dtype, input: 0) }
      return reduce(UInt8.self, x, reduced, shape, context)
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
  }

  private static func reduce<T: ReducibleElement>(
    _ t: T.Type, _ x: NDArray, _ reduced: [Bool], _ shape: [Int], _ context: KernelContext
  ) -> NDArray {
    // The input's extents, size-1 ones dropped and neighbors of the same kind merged:
    // alternately kept and reduced groups.
    var sizes: [Int] = []
    var reducing: [Bool] = []
    for (d, n) in x.shape.enumerated() where n != 1 {
      if reducing.last == reduced[d] {
        sizes[sizes.count - 1] *= n
      } else {
        sizes.append(n)
        reducing.append(reduced[d])
      }
    }
    if !reducing.contains(true) && !prepares && !finishes { return x.reshaped(shape) }
    var y = NDArray(uninitialized: x.dtype, shape: shape)
    let outCount = y.count
    guard outCount > 0 else { return y }
    let reducedCount = x.count / outCount
    let threads = context.threadCount
    y.withUnsafeMutableBytes { yb in
      let ys = yb.baseAddress!.assumingMemoryBound(to: T.self)
      if reducedCount == 0 {
        ys.initialize(repeating: finish(initial(T.self), count: 0), count: outCount)
        return
      }
      x.withRawElements(as: T.self) { xs in
        guard reducing.contains(true) else {
          // Only extents of 1 are reduced.
          for i in 0..<outCount { ys[i] = finish(prepare(xs[i]), count: 1) }
          return
        }
        // One pass per reduced group, innermost first, through temporaries.
        var source = xs
        var temporaries: [UnsafeMutablePointer<T>] = []
        defer { for p in temporaries { p.deallocate() } }
        var first = true
        while let g = reducing.lastIndex(of: true) {
          let outer = ShapeArithmetic.product(sizes[..<g])
          let length = sizes[g]
          let inner = ShapeArithmetic.product(sizes[(g + 1)...])
          sizes.remove(at: g)
          reducing.remove(at: g)
          let destination: UnsafeMutablePointer<T>
          if reducing.contains(true) {
            destination = .allocate(capacity: outer * inner)
            temporaries.append(destination)
          } else {
            destination = ys
          }
          if first {
            pass(FirstReductionPass.self, source, destination, outer, length, inner, threads)
          } else {
            pass(LaterReductionPass.self, source, destination, outer, length, inner, threads)
          }
          first = false
          source = UnsafePointer(destination)
        }
        if finishes {
          for i in 0..<outCount { ys[i] = finish(ys[i], count: reducedCount) }
        }
      }
    }
    return y
  }

  /// `y[o, i] = combine over l of x[o, l, i]` for `x` of shape [outer, length, inner], length ≥ 2.
  private static func pass<T: ReducibleElement, P: ReductionPass>(
    _ p: P.Type, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ outer: Int, _ length: Int, _ inner: Int,
    _ threads: Int
  ) {
    let grain = 1 << 15
    if inner == 1 {
      let chunks = min(threads, max(1, length / grain))
      if outer == 1 && chunks > 1 {
        // One long row: partial results per thread.
        var partials = [T](repeating: initial(T.self), count: chunks)
        partials.withUnsafeMutableBufferPointer { pp in
          let partial = pp.baseAddress!
          Parallel.forEach(count: chunks, threads: threads) { r in
            for c in r {
              let start = length * c / chunks
              partial[c] = row(p, x + start, length * (c + 1) / chunks - start)
            }
          }
        }
        var total = partials[0]
        for c in 1..<chunks { total = combine(total, partials[c]) }
        y[0] = total
        return
      }
      Parallel.forEach(count: outer, threads: threads, grain: max(1, grain / length)) { rows in
        for o in rows { y[o] = row(p, x + o * length, length) }
      }
      return
    }
    // Rows of `inner` contiguous elements combined into the output, in column blocks that stay
    // in cache.
    Parallel.forEach(count: outer * inner, threads: threads, grain: max(1, grain / length)) { range in
      var j = range.lowerBound
      while j < range.upperBound {
        let (o, i0) = (j / inner, j % inner)
        let n = Swift.min(inner - i0, range.upperBound - j, 4096)
        let source = x + o * length * inner + i0
        let destination = y + j
        for i in 0..<n { destination[i] = P.load(Self.self, source[i]) }
        for l in 1..<length {
          let r = source + l * inner
          for i in 0..<n { destination[i] = combine(destination[i], P.load(Self.self, r[i])) }
        }
        j += n
      }
    }
  }

  /// The combination of `n` contiguous elements, in eight independent lanes so that the loop
  /// vectorizes (float combination does not reassociate).
  @inline(__always)
  private static func row<T: ReducibleElement, P: ReductionPass>(
    _ p: P.Type, _ x: UnsafePointer<T>, _ n: Int
  ) -> T {
    let start = initial(T.self)
    var (a0, a1, a2, a3, a4, a5, a6, a7) = (start, start, start, start, start, start, start, start)
    var i = 0
    while i + 8 <= n {
      a0 = combine(a0, P.load(Self.self, x[i]))
      a1 = combine(a1, P.load(Self.self, x[i + 1]))
      a2 = combine(a2, P.load(Self.self, x[i + 2]))
      a3 = combine(a3, P.load(Self.self, x[i + 3]))
      a4 = combine(a4, P.load(Self.self, x[i + 4]))
      a5 = combine(a5, P.load(Self.self, x[i + 5]))
      a6 = combine(a6, P.load(Self.self, x[i + 6]))
      a7 = combine(a7, P.load(Self.self, x[i + 7]))
      i += 8
    }
    var total = combine(combine(combine(a0, a1), combine(a2, a3)), combine(combine(a4, a5), combine(a6, a7)))
    while i < n {
      total = combine(total, P.load(Self.self, x[i]))
      i += 1
    }
    return total
  }
}

enum ReduceSumOperation: ReductionOperation {
  static var axesInputOpset: Int { 13 }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
}

enum ReduceMeanOperation: ReductionOperation {
  static var finishes: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
  @inline(__always) static func finish<T: ReducibleElement>(_ a: T, count: Int) -> T { T.mean(a, count: count) }
}

enum ReduceProdOperation: ReductionOperation {
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.one }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.times(a, b) }
}

/// ReduceMax: NaN when any element is NaN (as numpy; onnxruntime skips NaNs); −∞ (or the
/// type's minimum) for no elements.
enum ReduceMaxOperation: ReductionOperation {
  static var acceptsBytes: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.lowest }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { b > a || b != b ? b : a }
}

/// ReduceMin: NaN when any element is NaN; +∞ (or the type's maximum) for no elements.
enum ReduceMinOperation: ReductionOperation {
  static var acceptsBytes: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.highest }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { b < a || b != b ? b : a }
}

enum ReduceL1Operation: ReductionOperation {
  static var prepares: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func prepare<T: ReducibleElement>(_ x: T) -> T { T.absolute(x) }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
}

enum ReduceL2Operation: ReductionOperation {
  static var prepares: Bool { true }
  static var finishes: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func prepare<T: ReducibleElement>(_ x: T) -> T { T.times(x, x) }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
  @inline(__always) static func finish<T: ReducibleElement>(_ a: T, count: Int) -> T { T.squareRoot(a) }
}

enum ReduceSumSquareOperation: ReductionOperation {
  static var prepares: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func prepare<T: ReducibleElement>(_ x: T) -> T { T.times(x, x) }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
}

enum ReduceLogSumOperation: ReductionOperation {
  static var finishes: Bool { true }
  @inline(__always) static func initial<T: ReducibleElement>(_ t: T.Type) -> T { T.zero }
  @inline(__always) static func combine<T: ReducibleElement>(_ a: T, _ b: T) -> T { T.plus(a, b) }
  @inline(__always) static func finish<T: ReducibleElement>(_ a: T, count: Int) -> T { T.logarithm(a) }
}

/// ReduceSum, ReduceMean, ReduceProd, ReduceMax, ReduceMin, ReduceL1, ReduceL2,
/// ReduceSumSquare, ReduceLogSum: float32, double, int64 and int32 (ReduceMax and ReduceMin also
/// int8, uint8 and bool).
///
/// The axes are the `axes` attribute before `Op.axesInputOpset` (13 for ReduceSum, 18 for the
/// others) and the optional int64 `axes` input from then on; negative axes count from the end,
/// and no axes means every axis, or with `noop_with_empty_axes` the input unchanged. `keepdims`
/// (default 1) keeps reduced axes as extent 1. A reduction of no elements gives the operation's
/// identity (0, 1, −∞, +∞; a mean of nothing is 0, as in onnxruntime).
///
/// The input's axes are merged into alternating kept and reduced groups; each reduced group is
/// one pass over [outer, length, inner]: contiguous rows (the last axis, or all of them) reduce
/// in eight vector lanes, other axes by combining whole rows of `inner` elements.
struct ReduceKernel<Op: ReductionOperation>: Kernel {
  let keepDims: Bool
  /// The axes attribute, before `Op.axesInputOpset`.
  let attributeAxes: [Int]?
  let axesAreInput: Bool
  let noopWithEmptyAxes: Bool

  init(_ builder: KernelBuilder) throws {
    keepDims = try builder.int("keepdims", default: 1) != 0
    if builder.opset < Op.axesInputOpset {
      attributeAxes = try builder.optionalInts("axes")
      axesAreInput = false
      noopWithEmptyAxes = false
    } else {
      attributeAxes = nil
      axesAreInput = true
      noopWithEmptyAxes = try builder.int("noop_with_empty_axes", default: 0) != 0
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    var axes = attributeAxes ?? []
    if axesAreInput, let a = context.optionalInput(1) {
      guard a.dtype == .int64 || a.dtype == .int32, a.rank <= 1 else {
        throw context.error("axes (input 1) must be a 1-D int64 tensor; got \(a.dtype) \(describe(shape: a.shape))")
      }
      axes = a.dtype == .int64 ? a.scalars(as: Int64.self).map { Int($0) } : a.scalars(as: Int32.self).map { Int($0) }
    }
    if axes.isEmpty && noopWithEmptyAxes { return [x] }
    return [try Op.evaluate(x, axes: axes.isEmpty ? nil : axes, keepDims: keepDims, context)]
  }
}

// MARK: ArgMax, ArgMin

/// ArgMax or ArgMin. `evaluate` holds the loops in a default implementation, specialized per
/// operation.
protocol ArgReduction {
  /// Whether `a` is strictly beyond `b`: greater for ArgMax, less for ArgMin.
  static func beyond<T: Comparable>(_ a: T, _ b: T) -> Bool
  static func evaluate(
    _ x: NDArray, axis: Int, keepDims: Bool, selectsLast: Bool, _ context: KernelContext
  ) throws -> NDArray
}

/// Whether an element replaces the best so far. NaN counts as the extreme value (as numpy's
/// argmax and argmin), so the first NaN (the last with `select_last_index`) is chosen.
protocol ArgTieRule {
  static func replaces<Op: ArgReduction, T: Comparable>(_ op: Op.Type, _ x: T, _ best: T) -> Bool
}

/// Ties keep the first index.
enum FirstArgIndex: ArgTieRule {
  @inline(__always) static func replaces<Op: ArgReduction, T: Comparable>(_ op: Op.Type, _ x: T, _ best: T) -> Bool {
    best == best && (Op.beyond(x, best) || x != x)
  }
}

/// Ties take the last index.
enum LastArgIndex: ArgTieRule {
  @inline(__always) static func replaces<Op: ArgReduction, T: Comparable>(_ op: Op.Type, _ x: T, _ best: T) -> Bool {
    x != x || (best == best && !Op.beyond(best, x))
  }
}

extension ArgReduction {
  static func evaluate(
    _ x: NDArray, axis: Int, keepDims: Bool, selectsLast: Bool, _ context: KernelContext
  ) throws -> NDArray {
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    let length = x.shape[a]
    let outer = ShapeArithmetic.product(x.shape[..<a])
    let inner = ShapeArithmetic.product(x.shape[(a + 1)...])
    var shape = x.shape
    if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
    var y = NDArray(uninitialized: .int64, shape: shape)
    guard y.count > 0 else { return y }
    guard length > 0 else { throw context.error("axis \(a) is empty: there is no extreme element") }
    switch x.dtype {
    case .float: scan(Float.self, x, &y, outer, length, inner, selectsLast, context)
    case .double: scan(Double.self, x, &y, outer, length, inner, selectsLast, context)
    case .int64: scan(Int64.self, x, &y, outer, length, inner, selectsLast, context)
    case .int32: scan(Int32.self, x, &y, outer, length, inner, selectsLast, context)
    case .int16: scan(Int16.self, x, &y, outer, length, inner, selectsLast, context)
    case .int8: scan(Int8.self, x, &y, outer, length, inner, selectsLast, context)
    case .uint64: scan(UInt64.self, x, &y, outer, length, inner, selectsLast, context)
    case .uint32: scan(UInt32.self, x, &y, outer, length, inner, selectsLast, context)
    case .uint16: scan(UInt16.self, x, &y, outer, length, inner, selectsLast, context)
    case .uint8, .bool: scan(UInt8.self, x, &y, outer, length, inner, selectsLast, context)
    default: throw context.unsupportedType(x.dtype, input: 0)
    }
    return y
  }

  private static func scan<T: Comparable>(
    _ t: T.Type, _ x: NDArray, _ y: inout NDArray, _ outer: Int, _ length: Int, _ inner: Int, _ selectsLast: Bool,
    _ context: KernelContext
  ) {
    x.withRawElements(as: T.self) { xs in
      y.withUnsafeMutableBufferPointer(of: Int64.self) { yp in
        if selectsLast {
          scan(LastArgIndex.self, xs, yp.baseAddress!, outer, length, inner, context.threadCount)
        } else {
          scan(FirstArgIndex.self, xs, yp.baseAddress!, outer, length, inner, context.threadCount)
        }
      }
    }
  }

  private static func scan<T: Comparable, Rule: ArgTieRule>(
    _ rule: Rule.Type, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<Int64>, _ outer: Int, _ length: Int,
    _ inner: Int, _ threads: Int
  ) {
    let grain = max(1, (1 << 15) / length)
    if inner == 1 {
      Parallel.forEach(count: outer, threads: threads, grain: grain) { rows in
        for o in rows {
          let row = x + o * length
          var best = row[0]
          var index = 0
          for l in 1..<max(length, 1) where Rule.replaces(Self.self, row[l], best) {
            best = row[l]
            index = l
          }
          y[o] = Int64(index)
        }
      }
      return
    }
    let block = 1024
    Parallel.forEach(count: outer * inner, threads: threads, grain: grain) { range in
      let best = UnsafeMutablePointer<T>.allocate(capacity: block)
      defer { best.deallocate() }
      var j = range.lowerBound
      while j < range.upperBound {
        let (o, i0) = (j / inner, j % inner)
        let n = Swift.min(inner - i0, range.upperBound - j, block)
        let source = x + o * length * inner + i0
        let index = y + j
        best.initialize(from: source, count: n)
        index.initialize(repeating: 0, count: n)
        for l in 1..<max(length, 1) {
          let r = source + l * inner
          let position = Int64(l)
          for i in 0..<n where Rule.replaces(Self.self, r[i], best[i]) {
            best[i] = r[i]
            index[i] = position
          }
        }
        j += n
      }
    }
  }
}

enum ArgMaxReduction: ArgReduction {
  @inline(__always) static func beyond<T: Comparable>(_ a: T, _ b: T) -> Bool { a > b }
}

enum ArgMinReduction: ArgReduction {
  @inline(__always) static func beyond<T: Comparable>(_ a: T, _ b: T) -> Bool { a < b }
}

/// ArgMax, ArgMin: the int64 index of the largest (smallest) element along `axis` (default 0),
/// the first of equal ones or with `select_last_index` (opset 12) the last; `keepdims` (default
/// 1) keeps the axis as extent 1. Float, double, every integer type and bool. NaN counts as the
/// extreme (numpy's rule; onnxruntime skips NaNs). An empty axis is an error.
struct ArgReduceKernel<Op: ArgReduction>: Kernel {
  let axis: Int
  let keepDims: Bool
  let selectsLast: Bool

  init(_ builder: KernelBuilder) throws {
    axis = try builder.int("axis", default: 0)
    keepDims = try builder.int("keepdims", default: 1) != 0
    selectsLast = try builder.int("select_last_index", default: 0) != 0
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    [try Op.evaluate(try context.input(0), axis: axis, keepDims: keepDims, selectsLast: selectsLast, context)]
  }
}
