import Graph

/// Reshape (any element type, no copy): the shape input's 0 copies the input's extent at that
/// position (unless `allowzero` = 1, opset 14, where it means 0) and one −1 is inferred.
struct Reshape: Kernel {
  let allowZero: Bool
  /// The `shape` attribute of opsets before 5.
  let attributeShape: [Int]?

  init(_ builder: KernelBuilder) throws {
    allowZero = try builder.int("allowzero", default: 0) != 0
    attributeShape = builder.opset < 5 ? try builder.optionalInts("shape") : nil
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let requested: [Int]
    if let attributeShape {
      requested = attributeShape
    } else {
      let s = try context.input(1, .int64)
      guard s.rank == 1 else { throw context.error("the shape input must be 1-D; got \(describe(shape: s.shape))") }
      requested = s.scalars(as: Int64.self).map { Int($0) }
    }
    return [x.reshaped(try Self.resolve(requested, input: x.shape, allowZero: allowZero, context))]
  }

  /// The output shape for a requested shape with 0 and −1 entries.
  static func resolve(_ requested: [Int], input: [Int], allowZero: Bool, _ context: KernelContext) throws(RuntimeError)
    -> [Int]
  {
    var shape = requested
    var inferred: Int? = nil
    for (i, d) in requested.enumerated() {
      switch d {
      case -1:
        guard inferred == nil else { throw context.error("shape \(requested) has more than one -1") }
        inferred = i
      case 0 where !allowZero:
        guard i < input.count else {
          throw context.error("shape \(requested) copies axis \(i), but the input has rank \(input.count)")
        }
        shape[i] = input[i]
      case ..<0: throw context.error("shape \(requested) has a negative extent")
      default: break
      }
    }
    let count = ShapeArithmetic.product(input)
    if let i = inferred {
      if allowZero && shape.contains(0) { throw context.error("shape \(requested) has both 0 (with allowzero) and -1") }
      let known = shape.enumerated().reduce(1) { $1.offset == i ? $0 : $0 * $1.element }
      guard known > 0, count % known == 0 else {
        throw context.error("cannot reshape \(describe(shape: input)) to \(requested)")
      }
      shape[i] = count / known
    }
    guard checkedElementCount(shape) == count else {
      throw context.error("cannot reshape \(describe(shape: input)) (\(count) elements) to \(requested)")
    }
    return shape
  }
}

/// Flatten (any element type, no copy): `[d0 … d(axis−1), d(axis) …]` → 2-D.
struct Flatten: Kernel {
  let axis: Int

  init(_ builder: KernelBuilder) throws { axis = try builder.int("axis", default: 1) }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let a = axis < 0 ? axis + x.rank : axis
    guard a >= 0 && a <= x.rank else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    return [x.reshaped([ShapeArithmetic.product(x.shape[..<a]), ShapeArithmetic.product(x.shape[a...])])]
  }
}

/// Shape: the input's shape as int64, optionally the axes `start..<end` (opset 15; negative
/// values count from the end, both clamped to the rank).
struct Shape: Kernel {
  let start: Int
  let end: Int?

  init(_ builder: KernelBuilder) throws {
    start = try builder.int("start", default: 0)
    end = try builder.optionalInt("end")
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let rank = x.rank
    func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
    let (s, e) = (clamp(start), clamp(end ?? rank))
    let dims = s < e ? x.shape[s..<e].map { Int64($0) } : []
    return [NDArray(dims, shape: [dims.count])]
  }
}
