/// Identity: the input itself (no copy).
struct Identity: Kernel {
  init(_ builder: KernelBuilder) throws {}
  func run(_ context: KernelContext) throws -> [NDArray] { [try context.input(0)] }
}

/// Dropout in inference: the input itself, and a mask of all true (all ones before opset 10).
/// Training mode (the `training_mode` input of opset 12, or `is_test` = 0 before opset 7) is an error.
struct Dropout: Kernel {
  let boolMask: Bool

  init(_ builder: KernelBuilder) throws {
    builder.ignore("seed", "ratio")  // no effect in inference
    if let isTest = try builder.optionalInt("is_test"), isTest == 0 { throw builder.unsupported("is_test", 0) }
    boolMask = builder.opset >= 10
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    if let training = context.optionalInput(2) {
      guard training.dtype == .bool, training.count == 1 else {
        throw context.error("training_mode must be a bool scalar")
      }
      if training.scalars(as: Bool.self)[0] { throw context.error("training mode is not supported") }
    }
    let mask: NDArray
    if boolMask {
      mask = NDArray([Bool](repeating: true, count: x.count), shape: x.shape)
    } else if x.dtype == .float {
      mask = NDArray([Float](repeating: 1, count: x.count), shape: x.shape)
    } else {
      throw context.unsupportedType(x.dtype, input: 0)
    }
    return [x, mask]
  }
}
