import Graph

/// Element types binary arithmetic runs on: integer operations wrap around, as onnxruntime's do.
protocol ArithmeticElement: TensorElement, Comparable {
  static var zero: Self { get }
  static func add(_ a: Self, _ b: Self) -> Self
  static func subtract(_ a: Self, _ b: Self) -> Self
  static func multiply(_ a: Self, _ b: Self) -> Self
  /// Integer division truncates toward zero; divisors are checked for zero beforehand.
  static func divide(_ a: Self, _ b: Self) -> Self
}

extension Float: ArithmeticElement {
  @inline(__always) static func add(_ a: Float, _ b: Float) -> Float { a + b }
  @inline(__always) static func subtract(_ a: Float, _ b: Float) -> Float { a - b }
  @inline(__always) static func multiply(_ a: Float, _ b: Float) -> Float { a * b }
  @inline(__always) static func divide(_ a: Float, _ b: Float) -> Float { a / b }
}

extension Double: ArithmeticElement {
  @inline(__always) static func add(_ a: Double, _ b: Double) -> Double { a + b }
  @inline(__always) static func subtract(_ a: Double, _ b: Double) -> Double { a - b }
  @inline(__always) static func multiply(_ a: Double, _ b: Double) -> Double { a * b }
  @inline(__always) static func divide(_ a: Double, _ b: Double) -> Double { a / b }
}

/// Wrapping integer arithmetic.
protocol WrappingArithmeticElement: ArithmeticElement, FixedWidthInteger {}

extension WrappingArithmeticElement {
  @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a &+ b }
  @inline(__always) static func subtract(_ a: Self, _ b: Self) -> Self { a &- b }
  @inline(__always) static func multiply(_ a: Self, _ b: Self) -> Self { a &* b }
  @inline(__always) static func divide(_ a: Self, _ b: Self) -> Self { a.dividedReportingOverflow(by: b).partialValue }
}

extension Int64: WrappingArithmeticElement {}
extension Int32: WrappingArithmeticElement {}
extension Int16: WrappingArithmeticElement {}
extension Int8: WrappingArithmeticElement {}
extension UInt64: WrappingArithmeticElement {}
extension UInt32: WrappingArithmeticElement {}
extension UInt16: WrappingArithmeticElement {}
extension UInt8: WrappingArithmeticElement {}

/// One of Add, Sub, Mul, Div.
///
/// `evaluate` is a requirement with a default implementation so that each conforming type gets
/// its own specialized copy of the loops (a generic kernel reaching them only through `Op`'s generic
/// methods would run them unspecialized, an indirect call per element).
protocol ArithmeticOperation {
  static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T
  /// Whether integer divisors must be checked for zero.
  static var divides: Bool { get }
  /// `a op b`, broadcast.
  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray
}

extension ArithmeticOperation {
  static var divides: Bool { false }

  static func evaluate(_ a: NDArray, _ b: NDArray, _ context: KernelContext) throws -> NDArray {
    guard a.dtype == b.dtype else { throw context.error("inputs have different types \(a.dtype) and \(b.dtype)") }
    guard let plan = BinaryBroadcast(a.shape, b.shape) else {
      throw context.error("cannot broadcast \(describe(shape: a.shape)) with \(describe(shape: b.shape))")
    }
    switch a.dtype {
    case .float: return compute(Float.self, a, b, plan, context)
    case .int64: return try integer(Int64.self, a, b, plan, context)
    case .int32: return try integer(Int32.self, a, b, plan, context)
    case .double: return compute(Double.self, a, b, plan, context)
    case .int16: return try integer(Int16.self, a, b, plan, context)
    case .int8: return try integer(Int8.self, a, b, plan, context)
    case .uint64: return try integer(UInt64.self, a, b, plan, context)
    case .uint32: return try integer(UInt32.self, a, b, plan, context)
    case .uint16: return try integer(UInt16.self, a, b, plan, context)
    case .uint8: return try integer(UInt8.self, a, b, plan, context)
    default: throw context.unsupportedType(a.dtype, input: 0)
    }
  }

  private static func integer<T: WrappingArithmeticElement>(
    _ t: T.Type, _ a: NDArray, _ b: NDArray, _ plan: BinaryBroadcast, _ context: KernelContext
  ) throws -> NDArray {
    if divides, plan.count > 0, b.withUnsafeBufferPointer(of: T.self, { $0.contains(0) }) {
      throw context.error("integer division by zero")
    }
    return compute(t, a, b, plan, context)
  }

  private static func compute<T: ArithmeticElement>(
    _ t: T.Type, _ a: NDArray, _ b: NDArray, _ plan: BinaryBroadcast, _ context: KernelContext
  ) -> NDArray {
    var out = NDArray(uninitialized: T.dtype, shape: plan.outputShape)
    a.withUnsafeBufferPointer(of: T.self) { ap in
      b.withUnsafeBufferPointer(of: T.self) { bp in
        out.withUnsafeMutableBufferPointer(of: T.self) { op in
          plan.apply(
            Arithmetic<Self, T>.self, ap.baseAddress!, bp.baseAddress!, op.baseAddress!, threads: context.threadCount)
        }
      }
    }
    return out
  }
}

enum AddOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.add(a, b) }
}
enum SubOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.subtract(a, b) }
}
enum MulOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.multiply(a, b) }
}
enum DivOperation: ArithmeticOperation {
  @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.divide(a, b) }
  static var divides: Bool { true }
}

/// `Op` on elements of `T`, for `BinaryBroadcast`.
struct Arithmetic<Op: ArithmeticOperation, T: ArithmeticElement>: BinaryElementFunction {
  @inline(__always) static func apply(_ a: T, _ b: T) -> T { Op.apply(a, b) }
}

/// Add, Sub, Mul, Div: `C = A op B` with multidirectional broadcasting, for float, double and the
/// signed and unsigned integers of 8 to 64 bits (integer results wrap around; integer Div truncates
/// toward zero; a zero divisor is an error, not a crash).
struct BinaryArithmetic<Op: ArithmeticOperation>: Kernel {
  init(_ builder: KernelBuilder) throws {
    // Opsets before 7 carried `broadcast` and `axis` (limited broadcasting): not supported.
    if builder.has("broadcast") || builder.has("axis") {
      throw builder.attributeError(
        builder.has("axis") ? "axis" : "broadcast", "legacy broadcasting (opset < 7) is not supported")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    [try Op.evaluate(try context.input(0), try context.input(1), context)]
  }
}
