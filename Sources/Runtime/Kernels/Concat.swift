/// Concat (any element type): inputs of equal rank joined along `axis` (negative from opset 11).
struct Concat: Kernel {
  let axis: Int

  init(_ builder: KernelBuilder) throws { axis = try builder.int("axis") }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let inputs = context.inputs.compactMap { $0 }
    guard let first = inputs.first else { throw context.error("needs at least one input") }
    guard first.rank > 0 else { throw context.error("cannot concatenate scalars") }
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: first.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(first.rank)")
    }
    var total = 0
    for (i, x) in inputs.enumerated() {
      guard x.dtype == first.dtype else { throw context.error("input \(i) is \(x.dtype), input 0 is \(first.dtype)") }
      guard x.rank == first.rank, (0..<x.rank).allSatisfy({ $0 == a || x.shape[$0] == first.shape[$0] }) else {
        throw context.error(
          "input \(i) has shape \(describe(shape: x.shape)), input 0 \(describe(shape: first.shape)) (axis \(a))")
      }
      total += x.shape[a]
    }
    var shape = first.shape
    shape[a] = total
    var y = NDArray(uninitialized: first.dtype, shape: shape)
    let outer = ShapeArithmetic.product(shape[..<a])
    let innerBytes = ShapeArithmetic.product(shape[(a + 1)...]) * first.elementSize
    let rowBytes = total * innerBytes
    y.withUnsafeMutableBytes { dst in
      guard let out = dst.baseAddress, dst.count > 0 else { return }
      var offset = 0
      for x in inputs {
        let chunk = x.shape[a] * innerBytes
        x.withUnsafeBytes { src in
          guard let s = src.baseAddress, chunk > 0 else { return }
          for o in 0..<outer { (out + o * rowBytes + offset).copyMemory(from: s + o * chunk, byteCount: chunk) }
        }
        offset += chunk
      }
    }
    return [y]
  }
}
