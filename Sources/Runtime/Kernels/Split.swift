/// Split (any element type): consecutive parts of `axis` (negative from opset 11), one per output,
/// of the sizes listed by `split` (an attribute before opset 13, an int64 input after), else equal
/// parts: `num_outputs` of them (opset 18, where a remainder leaves the last part smaller — parts
/// of ⌈d/n⌉) or one per output (which must then divide the axis). Parts that are contiguous runs of
/// the input (splits of a leading axis) are views.
struct Split: Kernel {
  let axis: Int
  /// The `split` attribute of opsets before 13.
  let attributeSplit: [Int]?
  /// `num_outputs` (opset 18).
  let numOutputs: Int?
  let outputCount: Int
  let splitFromInput: Bool

  init(_ builder: KernelBuilder) throws {
    axis = try builder.int("axis", default: 0)
    splitFromInput = builder.opset >= 13
    attributeSplit = splitFromInput ? nil : try builder.optionalInts("split")
    numOutputs = builder.opset >= 18 ? try builder.optionalInt("num_outputs") : nil
    outputCount = builder.outputCount
    if let numOutputs {
      guard numOutputs > 0 else { throw builder.attributeError("num_outputs", "must be positive; got \(numOutputs)") }
      guard numOutputs == outputCount else {
        throw builder.attributeError("num_outputs", "is \(numOutputs), but the node has \(outputCount) outputs")
      }
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    let d = x.shape[a]
    var sizes = attributeSplit
    if splitFromInput, let s = context.optionalInput(1), s.count > 0 {
      sizes = try DataMovement.integerInput(context, 1, name: "split", int32: false)
      if numOutputs != nil { throw context.error("both the split input and num_outputs are given") }
    }
    if let sizes {
      guard sizes.count == outputCount, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == d else {
        throw context.error("split \(sizes) does not cut axis \(a) of extent \(d) into \(outputCount) parts")
      }
    } else {
      let n = max(outputCount, 1)
      if d % n == 0 {
        sizes = [Int](repeating: d / n, count: n)
      } else if numOutputs != nil {
        let part = (d + n - 1) / n
        guard part * (n - 1) <= d else {
          throw context.error("cannot split axis \(a) of extent \(d) into \(n) parts of \(part)")
        }
        sizes = [Int](repeating: part, count: n - 1) + [d - part * (n - 1)]
      } else {
        throw context.error("axis \(a) of extent \(d) does not split evenly into \(n) outputs")
      }
    }
    let strides = ShapeArithmetic.strides(x.shape)
    var shape = x.shape
    var start = 0
    var outputs: [NDArray] = []
    for size in sizes! {
      shape[a] = size
      let offset = start * strides[a]
      let part = DataMovement.gather(x, shape: shape, strides: strides, offset: offset, threads: context.threadCount)
      outputs.append(part)
      start += size
    }
    return outputs
  }
}
