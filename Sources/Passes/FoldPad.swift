import Graph

/// Folds a zero constant Pad into the pads of the Conv or pool that reads it.
///
///     p = Pad(x, [0, 0, a, b, 0, 0, c, d]); y = Conv<pads = [e, f, g, h]>(p, W)
///       →  y = Conv<pads = [a+e, b+f, c+g, d+h]>(x, W)
///
/// The same into an AveragePool with `count_include_pad = 1` (its own padding counts as zeros in
/// the average, like the Pad's). Into a MaxPool (whose padding never wins the max) only when the
/// pad value is −∞, or when x is known non-negative (a Relu or Sigmoid output, so a padded 0 never
/// beats a real element) and every window keeps a real element (`ceil_mode` 0 and total pads per
/// side at most `(k − 1)·d`).
///
/// Conditions: mode `constant` with value 0 (absent is 0), pads non-negative and 0 on the batch and
/// channel axes, pads a constant (an input from opset 11, an attribute before), opset 18's `axes`
/// a constant; the consumer's `auto_pad` NOTSET (or VALID, whose pads are 0); the Pad's output read
/// only by that consumer. reflect, edge and wrap pads never fold: they do not pad with zeros.
public struct FoldPad: Pass {
  public static let name = "fold-pad"
  public static let summary = "Fold a zero constant Pad into the pads of the Conv, AveragePool or MaxPool after it"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([PadWindow(opset: rewriter.opset)])
  }
}

/// A Pad before a Conv, AveragePool or MaxPool; see ``FoldPad``.
struct PadWindow: RewritePattern {
  static let name = "pad-window"
  static let rootOpTypes: Set<String>? = [OpType.pad]
  let opset: Int

  struct Match {
    let pad: Node
    let consumer: Node
    let pads: [Int64]
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let x = node.input(0), let output = node.output(0), let value = padValue(node, in: graph),
      (node.attribute("mode")?.string ?? "constant") == "constant",
      let padPads = fullPads(node, in: graph), padPads.count % 2 == 0, padPads.allSatisfy({ $0 >= 0 }),
      let consumer = graph.soleConsumer(of: output), OpType.isDefaultDomain(consumer.domain),
      consumer.input(0) == output, !consumer.inputs.dropFirst().contains(output),
      ["NOTSET", "VALID"].contains(consumer.attribute("auto_pad")?.string ?? "NOTSET")
    else { return nil }
    let rank = padPads.count / 2, spatial = rank - 2
    guard spatial >= 1, padPads[0] == 0, padPads[1] == 0, padPads[rank] == 0, padPads[rank + 1] == 0 else { return nil }
    let own = consumer.attribute("pads")?.ints ?? Array(repeating: 0, count: 2 * spatial)
    guard own.count == 2 * spatial else { return nil }
    let added = Array(padPads[2..<rank]) + Array(padPads[(rank + 2)...])
    let pads = zip(own, added).map { $0 + $1 }
    switch consumer.opType {
    case OpType.conv:
      guard value == 0 else { return nil }
    case OpType.averagePool:
      guard value == 0, graph.int("count_include_pad", of: consumer, default: 0) != 0 else { return nil }
    case OpType.maxPool:
      guard consumer.outputs.count == 1 || consumer.output(1) == nil,
        value == -.infinity || (value == 0 && isNonNegative(x, in: graph)),
        graph.int("ceil_mode", of: consumer, default: 0) == 0,
        let kernel = consumer.attribute("kernel_shape")?.ints, kernel.count == spatial
      else { return nil }
      let dilations = consumer.attribute("dilations")?.ints ?? Array(repeating: 1, count: spatial)
      for i in 0..<spatial where pads[i] > (kernel[i] - 1) * dilations[i] || pads[spatial + i] > (kernel[i] - 1) * dilations[i] {
        return nil
      }
    default:
      return nil
    }
    return Match(pad: node, consumer: consumer, pads: pads)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let padLabel = rewriter.graph.label(m.pad), label = rewriter.graph.label(m.consumer)
    try rewriter.removeAttribute("auto_pad", of: m.consumer.id)
    try rewriter.setAttribute(Attribute("pads", .ints(m.pads)), of: m.consumer.id)
    rewriter.setInput(0, of: m.consumer.id, to: m.pad.input(0))
    rewriter.erase(m.pad.id)
    return "\(padLabel) folded into the pads of \(label)"
  }

  /// The constant the Pad pads with (0 when absent).
  private func padValue(_ pad: Node, in graph: Graph) -> Double? {
    if opset < 11 { return Double(pad.attribute("value")?.float ?? 0) }
    guard let v = pad.input(2) else { return 0 }
    guard let t = graph.constant(v), t.elementCount == 1, let d = t.doubles else { return nil }
    return d[0]
  }

  /// The pads as begin values for every axis then end values, expanding opset 18's `axes`.
  private func fullPads(_ pad: Node, in graph: Graph) -> [Int64]? {
    if opset < 11 {
      guard pad.attribute("paddings") == nil else { return nil }
      return pad.attribute("pads")?.ints
    }
    guard let pads = graph.constantInts(pad.input(1)) else { return nil }
    guard let axesValue = pad.input(3) else { return pads.count % 2 == 0 ? pads : nil }
    guard let axes = graph.constantInts(axesValue), pads.count == 2 * axes.count,
      let rank = graph.shape(of: pad.input(0))?.count
    else { return nil }
    var full = [Int64](repeating: 0, count: 2 * rank)
    for (i, axis) in axes.enumerated() {
      let a = axis < 0 ? Int(axis) + rank : Int(axis)
      guard a >= 0, a < rank else { return nil }
      full[a] += pads[i]
      full[rank + a] += pads[axes.count + i]
    }
    return full
  }

  /// Whether `value` is surely ≥ 0: a Relu or Sigmoid output.
  private func isNonNegative(_ value: ValueID, in graph: Graph) -> Bool {
    guard let producer = graph.producer(of: value), OpType.isDefaultDomain(producer.domain) else { return false }
    return producer.opType == OpType.relu || producer.opType == OpType.sigmoid
  }
}
