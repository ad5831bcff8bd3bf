import Graph

/// ConstantOfShape (opset 9): an array of the shape given by the int64 input, every element the
/// one-element `value` tensor (of any type; float 0 by default).
struct ConstantOfShape: Kernel {
  let value: NDArray

  init(_ builder: KernelBuilder) throws {
    guard let t = try builder.optionalTensor("value") else {
      value = NDArray(scalar: Float(0))
      return
    }
    let v: NDArray
    do {
      v = try NDArray.runtimeConstant(t)
    } catch {
      throw builder.attributeError("value", error.message)
    }
    guard v.count == 1 else { throw builder.attributeError("value", "must hold one element; holds \(v.count)") }
    value = v
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let shape = try DataMovement.integerInput(context, 0, name: "shape", int32: false)
    guard shape.allSatisfy({ $0 >= 0 }) else { throw context.error("shape \(shape) has a negative extent") }
    try DataMovement.checkAllocatable(value.dtype, shape, context)
    let zeros = [Int](repeating: 0, count: shape.count)
    return [DataMovement.gather(value, shape: shape, strides: zeros, threads: context.threadCount)]
  }
}

/// Expand (any element type): the input broadcast with the int64 shape input, in both directions
/// (an extent 1 in the shape keeps the input's extent).
struct Expand: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let requested = try DataMovement.integerInput(context, 1, name: "shape", int32: false)
    guard requested.allSatisfy({ $0 >= 0 }), let shape = BinaryBroadcast.shape(x.shape, requested) else {
      throw context.error("cannot expand \(describe(shape: x.shape)) to \(requested)")
    }
    try DataMovement.checkAllocatable(x.dtype, shape, context)
    let inStrides = ShapeArithmetic.strides(x.shape)
    let lead = shape.count - x.rank
    let strides = (0..<shape.count).map { i in i < lead || x.shape[i - lead] == 1 ? 0 : inStrides[i - lead] }
    return [DataMovement.gather(x, shape: shape, strides: strides, threads: context.threadCount)]
  }
}

/// Tile (opset 6; any element type): the input repeated `repeats[i]` times along each axis i.
struct Tile: Kernel {
  init(_ builder: KernelBuilder) throws {
    guard builder.opset >= 6 else {
      throw builder.error("Tile before opset 6 (tiles and axis inputs) is not supported")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let repeats = try DataMovement.integerInput(context, 1, name: "repeats", int32: false)
    guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
      throw context.error("repeats \(repeats) must be \(x.rank) non-negative counts")
    }
    // Seen as [r0, d0, r1, d1, …] with the repeat axes broadcast (stride 0).
    let inStrides = ShapeArithmetic.strides(x.shape)
    let viewShape = (0..<x.rank).flatMap { [repeats[$0], x.shape[$0]] }
    let viewStrides = (0..<x.rank).flatMap { [0, inStrides[$0]] }
    try DataMovement.checkAllocatable(x.dtype, viewShape, context)
    let y = DataMovement.gather(x, shape: viewShape, strides: viewStrides, threads: context.threadCount)
    return [y.reshaped((0..<x.rank).map { repeats[$0] * x.shape[$0] })]
  }
}

/// Range (opset 11): `start, start + delta, …` short of `limit`, ⌈(limit − start) / delta⌉ values
/// (none when negative), for float, double, int16, int32 and int64 scalars. Floating-point values
/// are accumulated (`v += delta`) as onnxruntime and the operator's function body do.
struct RangeKernel: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let start = try context.input(0)
    for i in 0..<3 {
      let v = try context.input(i)
      guard v.dtype == start.dtype else { throw context.error("input \(i) is \(v.dtype), input 0 is \(start.dtype)") }
      guard v.count == 1, v.rank <= 1 else {
        throw context.error("input \(i) must be a scalar; got shape \(describe(shape: v.shape))")
      }
    }
    let (limit, delta) = (try context.input(1), try context.input(2))
    switch start.dtype {
    case .float: return [try Self.floating(Float.self, start, limit, delta, context)]
    case .double: return [try Self.floating(Double.self, start, limit, delta, context)]
    case .int64: return [try Self.integer(Int64.self, start, limit, delta, context)]
    case .int32: return [try Self.integer(Int32.self, start, limit, delta, context)]
    case .int16: return [try Self.integer(Int16.self, start, limit, delta, context)]
    default: throw context.unsupportedType(start.dtype, input: 0)
    }
  }

  private static func floating<T: BinaryFloatingPoint & TensorElement>(
    _: T.Type, _ start: NDArray, _ limit: NDArray, _ delta: NDArray, _ context: KernelContext
  ) throws(RuntimeError) -> NDArray {
    let (s, l, d) = (start.scalars(as: T.self)[0], limit.scalars(as: T.self)[0], delta.scalars(as: T.self)[0])
    guard d != 0 else { throw context.error("delta must not be 0") }
    let steps = (Double(l - s) / Double(d)).rounded(.up)
    guard !steps.isNaN, steps < Double(1 << 48) else {
      throw context.error("range from \(s) to \(l) by \(d) has too many values")
    }
    let n = max(Int(steps), 0)
    var y = try DataMovement.allocate(T.dtype, [n], context)
    y.withUnsafeMutableBufferPointer(of: T.self) { out in
      var v = s
      for i in 0..<n {
        out[i] = v
        v += d
      }
    }
    return y
  }

  private static func integer<T: FixedWidthInteger & TensorElement>(
    _: T.Type, _ start: NDArray, _ limit: NDArray, _ delta: NDArray, _ context: KernelContext
  ) throws(RuntimeError) -> NDArray {
    let s = Int(start.scalars(as: T.self)[0])
    let l = Int(limit.scalars(as: T.self)[0])
    let d = Int(delta.scalars(as: T.self)[0])
    guard d != 0 else { throw context.error("delta must not be 0") }
    let (span, overflow) = l.subtractingReportingOverflow(s)
    guard !overflow else { throw context.error("range from \(s) to \(l) has too many values") }
    let (quotient, tooMany) = span.dividedReportingOverflow(by: d)
    guard !tooMany else { throw context.error("range from \(s) to \(l) has too many values") }
    var n = quotient
    if quotient * d != span && (span > 0) == (d > 0) { n += 1 }
    n = max(n, 0)
    var y = try DataMovement.allocate(T.dtype, [n], context)
    y.withUnsafeMutableBufferPointer(of: T.self) { out in
      for i in 0..<n { out[i] = T(truncatingIfNeeded: s &+ i &* d) }
    }
    return y
  }
}
