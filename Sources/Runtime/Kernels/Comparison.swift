import Graph

// MARK: Comparisons

/// One of Equal, Less, Greater, LessOrEqual, GreaterOrEqual.
///
/// `evaluate` holds the loops in a default implementation, specialized per operation (see
/// `ArithmeticOperation`).
protocol ComparisonOperation {
  static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool
  /// `a op b`, broadcast, as bool.
  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray
}

extension ComparisonOperation {
  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray {
    guard a.dtype == b.dtype else { throw context.error("inputs have different types \(a.dtype) and \(b.dtype)") }
    guard let plan = BinaryBroadcast(a.shape, b.shape) else {
      throw context.error("cannot broadcast \(describe(shape: a.shape)) with \(describe(shape: b.shape))")
    }
    switch a.dtype {
    case .float: return compare(Float.self, a, b, plan, context)
    case .double: return compare(Double.self, a, b, plan, context)
    case .int64: return compare(Int64.self, a, b, plan, context)
    case .int32: return compare(Int32.self, a, b, plan, context)
    case .int16: return compare(Int16.self, a, b, plan, context)
    case .int8: return compare(Int8.self, a, b, plan, context)
    case .uint64: return compare(UInt64.self, a, b, plan, context)
    case .uint32: return compare(UInt32.self, a, b, plan, context)
    case .uint16: return compare(UInt16.self, a, b, plan, context)
    // Bools are the bytes 0 and 1: false < true.
    case .uint8, .bool: return compare(UInt8.self, a, b, plan, context)
    default: throw context.unsupportedType(a.dtype, input: 0)
    }
  }

  private static func compare<T: TensorElement & Comparable>(
    _ t: T.Type, _ a: NDArray, _ b: NDArray, _ plan: BinaryBroadcast, _ context: KernelContext
  ) -> NDArray {
    var out = NDArray(uninitialized: .bool, shape: plan.outputShape)
    guard plan.count > 0 else { return out }
    a.withRawElements(as: T.self) { ap in
      b.withRawElements(as: T.self) { bp in
        out.withUnsafeMutableBufferPointer(of: Bool.self) { op in
          plan.apply(Compared<Self, T>.self, ap, bp, op.baseAddress!, threads: context.threadCount)
        }
      }
    }
    return out
  }
}

/// `Op` on elements of `T`, for `BinaryBroadcast`.
struct Compared<Op: ComparisonOperation, T: TensorElement & Comparable>: BinaryElementFunction {
  typealias Input = T
  typealias Output = Bool
  @inline(__always) static func apply(_ a: T, _ b: T) -> Bool { Op.compare(a, b) }
}

enum EqualOperation: ComparisonOperation {
  @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a == b }
}
enum LessOperation: ComparisonOperation {
  @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a < b }
}
enum GreaterOperation: ComparisonOperation {
  @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a > b }
}
enum LessOrEqualOperation: ComparisonOperation {
  @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a <= b }
}
enum GreaterOrEqualOperation: ComparisonOperation {
  @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a >= b }
}

/// Equal, Less, Greater, LessOrEqual, GreaterOrEqual: bool `A op B` with multidirectional
/// broadcasting, for float, double, every integer type and bool (false < true). Floats compare
/// as IEEE does: NaN is unequal to everything and unordered, −0 equals +0.
struct ComparisonKernel<Op: ComparisonOperation>: Kernel {
  init(_ builder: KernelBuilder) throws {
    if builder.has("broadcast") || builder.has("axis") {
      throw builder.attributeError(
        builder.has("axis") ? "axis" : "broadcast", "legacy broadcasting (opset < 7) is not supported")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    [try Op.evaluate(try context.input(0), try context.input(1), context)]
  }
}

// MARK: Logical operators

/// One of And, Or, Xor on bools held as the bytes 0 and 1.
protocol LogicalOperation {
  static func apply(_ a: UInt8, _ b: UInt8) -> UInt8
  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray
}

extension LogicalOperation {
  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray {
    guard a.dtype == .bool else { throw context.unsupportedType(a.dtype, input: 0) }
    guard b.dtype == .bool else { throw context.unsupportedType(b.dtype, input: 1) }
    guard let plan = BinaryBroadcast(a.shape, b.shape) else {
      throw context.error("cannot broadcast \(describe(shape: a.shape)) with \(describe(shape: b.shape))")
    }
    var out = NDArray(uninitialized: .bool, shape: plan.outputShape)
    guard plan.count > 0 else { return out }
    a.withRawElements(as: UInt8.self) { ap in
      b.withRawElements(as: UInt8.self) { bp in
        out.withUnsafeMutableBytes { op in
          plan.apply(
            Logical<Self>.self, ap, bp, op.baseAddress!.assumingMemoryBound(to: UInt8.self),
            threads: context.threadCount)
        }
      }
    }
    return out
  }
}

struct Logical<Op: LogicalOperation>: BinaryElementFunction {
  @inline(__always) static func apply(_ a: UInt8, _ b: UInt8) -> UInt8 { Op.apply(a, b) }
}

enum AndOperation: LogicalOperation {
  @inline(__always) static func apply(_ a: UInt8, _ b: UInt8) -> UInt8 { a & b }
}
enum OrOperation: LogicalOperation {
  @inline(__always) static func apply(_ a: UInt8, _ b: UInt8) -> UInt8 { a | b }
}
enum XorOperation: LogicalOperation {
  @inline(__always) static func apply(_ a: UInt8, _ b: UInt8) -> UInt8 { a ^ b }
}

/// And, Or, Xor: bool inputs, multidirectional broadcasting.
struct LogicalKernel<Op: LogicalOperation>: Kernel {
  init(_ builder: KernelBuilder) throws {
    if builder.has("broadcast") || builder.has("axis") {
      throw builder.attributeError(
        builder.has("axis") ? "axis" : "broadcast", "legacy broadcasting (opset < 7) is not supported")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    [try Op.evaluate(try context.input(0), try context.input(1), context)]
  }
}

/// Not: the logical negation of a bool input.
struct Not: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .bool)
    var y = NDArray(uninitialized: .bool, shape: x.shape)
    guard x.count > 0 else { return [y] }
    x.withRawElements(as: UInt8.self) { xs in
      y.withUnsafeMutableBytes { yb in
        let ys = yb.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for i in 0..<yb.count { ys[i] = xs[i] ^ 1 }
      }
    }
    return [y]
  }
}

// MARK: Where

/// Where (opsets 9 and 16): `condition ? X : Y` element by element, the three broadcast
/// together (numpy rules); X and Y of any one type, the condition bool.
struct Where: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let c = try context.input(0, .bool)
    let x = try context.input(1)
    let y = try context.input(2)
    guard x.dtype == y.dtype else { throw context.error("X is \(x.dtype) and Y is \(y.dtype); they must match") }
    guard x.elementSize > 0 else { throw context.unsupportedType(x.dtype, input: 1) }
    guard let plan = MultiBroadcast([c.shape, x.shape, y.shape]) else {
      let shapes = "condition \(describe(shape: c.shape)), X \(describe(shape: x.shape))"
      throw context.error("cannot broadcast \(shapes) and Y \(describe(shape: y.shape))")
    }
    guard NDArray.canAllocate(x.dtype, shape: plan.outputShape) else {
      throw context.error("cannot allocate an output of type \(x.dtype) and shape \(describe(shape: plan.outputShape))")
    }
    var out = NDArray(uninitialized: x.dtype, shape: plan.outputShape)
    guard plan.count > 0 else { return [out] }
    c.withRawElements(as: UInt8.self) { cp in
      x.withUnsafeBytes { xb in
        y.withUnsafeBytes { yb in
          out.withUnsafeMutableBytes { ob in
            let (xs, ys, os) = (xb.baseAddress!, yb.baseAddress!, ob.baseAddress!)
            let threads = context.threadCount
            switch x.elementSize {
            case 1: Self.select(UInt8.self, cp, xs, ys, os, plan, threads)
            case 2: Self.select(UInt16.self, cp, xs, ys, os, plan, threads)
            case 4: Self.select(UInt32.self, cp, xs, ys, os, plan, threads)
            case 8: Self.select(UInt64.self, cp, xs, ys, os, plan, threads)
            default: Self.select(WhereElement16.self, cp, xs, ys, os, plan, threads)
            }
          }
        }
      }
    }
    return [out]
  }

  /// The selection for elements moved as `T` (any type of that width).
  private static func select<T: BitwiseCopyable>(
    _ t: T.Type, _ c: UnsafePointer<UInt8>, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer,
    _ out: UnsafeMutableRawPointer, _ plan: MultiBroadcast, _ threads: Int
  ) {
    let xs = x.assumingMemoryBound(to: T.self)
    let ys = y.assumingMemoryBound(to: T.self)
    let os = out.assumingMemoryBound(to: T.self)
    let n = plan.rowLength
    let last = plan.dims.count - 1
    let (sc, sx, sy) = (plan.strides[0][last], plan.strides[1][last], plan.strides[2][last])
    if plan.rowCount == 1 {
      Parallel.forEach(count: n, threads: threads, grain: 1 << 15) { r in
        let s = r.lowerBound
        row(c + s * sc, sc, xs + s * sx, sx, ys + s * sy, sy, os + s, r.count)
      }
      return
    }
    Parallel.forEach(count: plan.rowCount, threads: threads, grain: max(1, (1 << 15) / max(n, 1))) { rows in
      plan.forEachRow(rows) { offsets, o in
        row(c + offsets[0], sc, xs + offsets[1], sx, ys + offsets[2], sy, os + o, n)
      }
    }
  }

  @inline(__always)
  private static func row<T>(
    _ c: UnsafePointer<UInt8>, _ sc: Int, _ x: UnsafePointer<T>, _ sx: Int, _ y: UnsafePointer<T>, _ sy: Int,
    _ out: UnsafeMutablePointer<T>, _ n: Int
  ) {
    if sc == 1 && sx == 1 && sy == 1 {
      for i in 0..<n { out[i] = c[i] != 0 ? x[i] : y[i] }
    } else if sc == 1 && sx == 0 && sy == 0 {
      let (a, b) = (x[0], y[0])
      for i in 0..<n { out[i] = c[i] != 0 ? a : b }
    } else {
      for i in 0..<n { out[i] = c[i &* sc] != 0 ? x[i &* sx] : y[i &* sy] }
    }
  }
}

/// A 16-byte element (complex128), selected as a whole.
struct WhereElement16: BitwiseCopyable {
  var low: UInt64
  var high: UInt64
}

/// Multidirectional (numpy) broadcasting of any number of operands, planned as `BinaryBroadcast`
/// plans two: size-1 output dimensions dropped, adjacent dimensions merged where every operand
/// is broadcast in both or present in both, so that the innermost loop steps each operand by 1
/// or 0.
struct MultiBroadcast {
  let outputShape: [Int]
  let count: Int
  /// Loop dimensions, outermost first; never empty.
  let dims: [Int]
  /// Per operand, its element strides per loop dimension (0 where it is broadcast).
  let strides: [[Int]]

  init?(_ shapes: [[Int]]) {
    var out: [Int] = []
    for s in shapes {
      guard let b = BinaryBroadcast.shape(out, s) else { return nil }
      out = b
    }
    outputShape = out
    count = ShapeArithmetic.product(out)
    let rank = out.count
    func extent(_ s: [Int], _ i: Int) -> Int { i < rank - s.count ? 1 : s[i - (rank - s.count)] }
    var groups: [(size: Int, broadcast: [Bool])] = []
    for i in 0..<rank where out[i] != 1 {
      let broadcast = shapes.map { extent($0, i) == 1 }
      if let last = groups.last, last.broadcast == broadcast {
        groups[groups.count - 1].size *= out[i]
      } else {
        groups.append((out[i], broadcast))
      }
    }
    if groups.isEmpty { groups = [(1, shapes.map { _ in false })] }
    var strides = shapes.map { _ in [Int](repeating: 0, count: groups.count) }
    for k in shapes.indices {
      var run = 1
      for g in stride(from: groups.count - 1, through: 0, by: -1) where !groups[g].broadcast[k] {
        strides[k][g] = run
        run *= groups[g].size
      }
    }
    dims = groups.map(\.size)
    self.strides = strides
  }

  var rowLength: Int { dims[dims.count - 1] }
  var rowCount: Int { rowLength == 0 ? 0 : count / rowLength }

  /// Calls `body(operandOffsets, outputOffset)` for rows `rows` of the output, in order.
  func forEachRow(_ rows: Range<Int>, _ body: ([Int], Int) -> Void) {
    let outer = dims.count - 1
    var offsets = [Int](repeating: 0, count: strides.count)
    guard outer > 0 else {
      for r in rows { body(offsets, r * rowLength) }
      return
    }
    var index = [Int](repeating: 0, count: outer)
    var rest = rows.lowerBound
    for d in stride(from: outer - 1, through: 0, by: -1) {
      index[d] = rest % dims[d]
      rest /= dims[d]
      for k in strides.indices { offsets[k] += index[d] * strides[k][d] }
    }
    for r in rows {
      body(offsets, r * rowLength)
      var d = outer - 1
      while d >= 0 {
        index[d] += 1
        for k in strides.indices { offsets[k] += strides[k][d] }
        if index[d] < dims[d] { break }
        for k in strides.indices { offsets[k] -= strides[k][d] * dims[d] }
        index[d] = 0
        d -= 1
      }
    }
  }
}

extension NDArray {
  /// `body` with the elements read as `T`, which must have the dtype's width (bool as `UInt8`,
  /// or any type of the same layout); for non-empty arrays.
  func withRawElements<T, R>(as type: T.Type, _ body: (UnsafePointer<T>) -> R) -> R {
    precondition(MemoryLayout<T>.stride == elementSize, "reading \(dtype) elements as \(T.self)")
    return withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: T.self)) }
  }
}
