import Graph

/// Records an activation as part of the layer before it, so a runtime applies it while the layer's
/// output is still in cache (see ``FusedActivation``).
///
///     c = Conv(x, W, b); y = Relu(c)
///       →  y = ai.rebirth.Conv<activation = "Relu", …Conv's attributes>(x, W, b)
///
///     c = Gemm(x, W, b); y = Clip(c, lo, hi)            (lo, hi constant scalars; opset 11+)
///       →  y = ai.rebirth.Gemm<activation = "Clip", activation_params = [lo, hi], …>(x, W, b)
///
/// Layers: Conv, ConvTranspose, Gemm, MatMul. Activations, with the parameters recorded:
/// Relu; Clip [min, max] (inputs from opset 11, which must then be constant scalars, ±∞ when
/// omitted; attributes before); LeakyRelu [alpha] (default 0.01); Sigmoid; HardSigmoid
/// [alpha, beta] (defaults 0.2, 0.5); HardSwish; Tanh. The fused layer keeps the layer's inputs
/// and attributes, takes the activation's output, and the model imports `ai.rebirth` version 1.
///
/// Exact: the fused layer computes `act(layer(x))`, the same arithmetic in the same order.
/// Declines: a layer output with another use or that is a graph output, a non-float32 layer
/// output, a Clip bound that is not a constant float scalar (a graph input, a node output), an
/// activation with more than one output.
///
/// Which target it pays on: rebirth's runtime and `.tmf` run the fused layer in one kernel (no
/// separate activation pass or buffer). ONNX has no fused layers: the ONNX exporter writes each
/// back as the standard layer and activation, so for `.onnx` output the pass only round-trips and
/// is off by default; with `--allow-contrib-ops` the exporter writes fused Conv and Gemm layers as
/// onnxruntime's `com.microsoft.FusedConv`/`FusedGemm` (``ContribFusedLayers``), so it is on.
public struct FuseActivation: Pass {
  public static let name = "fuse-activation"
  public static let summary = "Record Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish or Tanh as the fused activation of the Conv, ConvTranspose, Gemm or MatMul before it"
  public static let isExact = true
  public static let isDefault = false
  public static let preset: Preset? = nil
  public static let targetNote: String? =
    "on for .tmf, and for .onnx with --allow-contrib-ops (Conv and Gemm written as onnxruntime's FusedConv/FusedGemm); "
    + "off for standard .onnx, which has no fused layers: the exporter writes them back as separate nodes "
    + "(the pass only round-trips there); rebirth's runtime and .tmf apply the activation inside the layer's kernel"

  public static func isDefault(for target: OutputTarget) -> Bool { target != .onnx }

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([LayerActivation(opset: rewriter.opset)])
  }
}

/// An activation after Conv, ConvTranspose, Gemm or MatMul; see ``FuseActivation``.
struct LayerActivation: RewritePattern {
  static let name = "layer-activation"
  static let rootOpTypes: Set<String>? = [
    OpType.relu, OpType.clip, OpType.leakyRelu, OpType.sigmoid, OpType.hardSigmoid, OpType.hardSwish, OpType.tanh,
  ]
  let opset: Int

  struct Match {
    let layer: Node
    let activationNode: Node
    let activation: FusedActivation
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard node.outputs.count == 1, node.output(0) != nil, let input = node.input(0),
      let layer = graph.producer(of: input), OpType.isDefaultDomain(layer.domain),
      FusedActivation.layerOpTypes.contains(layer.opType), layer.outputs.count == 1,
      graph.hasSingleUse(input), graph.elementType(of: input) == .float,
      let activation = activation(of: node, in: graph)
    else { return nil }
    return Match(layer: layer, activationNode: node, activation: activation)
  }

  /// The activation `node` computes, with its parameters resolved; nil when they are not constant.
  private func activation(of node: Node, in graph: Graph) -> FusedActivation? {
    switch node.opType {
    case OpType.clip: return clipBounds(of: node, in: graph).map { FusedActivation.clip(min: $0.0, max: $0.1) }
    case OpType.leakyRelu: return .leakyRelu(alpha: node.attribute("alpha")?.float ?? 0.01)
    case OpType.hardSigmoid:
      return .hardSigmoid(alpha: node.attribute("alpha")?.float ?? 0.2, beta: node.attribute("beta")?.float ?? 0.5)
    default:
      guard node.inputs.count == 1 else { return nil }
      return FusedActivation(opType: node.opType, parameters: [])
    }
  }

  /// Clip's bounds: attributes before opset 11, constant scalar inputs from 11 (±∞ when omitted).
  private func clipBounds(of node: Node, in graph: Graph) -> (Float, Float)? {
    if opset < 11 {
      return (
        node.attribute("min")?.float ?? -.greatestFiniteMagnitude, node.attribute("max")?.float ?? .greatestFiniteMagnitude
      )
    }
    guard node.inputs.count <= 3 else { return nil }
    func bound(_ slot: Int, absent: Float) -> Float? {
      guard node.input(slot) != nil else { return absent }
      guard let t = graph.constant(node.input(slot)), t.dtype == .float, t.elementCount == 1, let v = t.floats?.first
      else { return nil }
      return v
    }
    guard let lo = bound(1, absent: -.infinity), let hi = bound(2, absent: .infinity), !lo.isNaN, !hi.isNaN
    else { return nil }
    return (lo, hi)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let layerLabel = rewriter.graph.label(m.layer), activationLabel = rewriter.graph.label(m.activationNode)
    let output = m.activationNode.outputs[0]!
    let outputName = rewriter.graph[output].name, outputType = rewriter.graph[output].type
    // The layer goes first so the fused layer can take its name.
    rewriter.setInput(0, of: m.activationNode.id, to: nil)
    rewriter.erase(m.layer.id)
    let attributes = (m.layer.attributes + m.activation.attributes).sorted { $0.name < $1.name }
    let fused = try rewriter.addNode(
      m.layer.opType, name: m.layer.name.isEmpty ? unnamed(m) : m.layer.name, inputs: m.layer.inputs, outputs: [outputName + "_fused"],
      attributes: attributes, domain: FusedActivation.domain)
    let fusedOutput = rewriter.graph[fused].outputs[0]!
    rewriter.setType(outputType, of: fusedOutput)
    rewriter.replaceAllUses(of: output, with: fusedOutput)
    rewriter.erase(m.activationNode.id)
    rewriter.rename(fusedOutput, to: outputName)
    rewriter.editModel { model in
      if !model.opsetImports.contains(where: { $0.domain == FusedActivation.domain }) {
        model.opsetImports.append(OpsetImport(domain: FusedActivation.domain, version: 1))
      }
    }
    return "\(activationLabel) fused into \(layerLabel)"
  }

  /// A name for the fused layer when the layer has none: "conv_relu".
  private func unnamed(_ m: Match) -> String {
    "\(m.layer.opType.lowercased())_\(m.activation.opType.lowercased())"
  }
}
