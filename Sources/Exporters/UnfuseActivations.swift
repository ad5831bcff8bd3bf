import Graph

extension Model {
  /// The model with every fused layer (`ai.rebirth` Conv, ConvTranspose, Gemm, MatMul carrying an
  /// `activation`, see ``FusedActivation``) written back as the standard layer followed by the
  /// standard activation node, and the `ai.rebirth` opset import dropped: standard ONNX.
  ///
  ///     y = ai.rebirth.Conv<activation = "Clip", activation_params = [0, 6], …>(x, W, b)
  ///       →  y_unfused = Conv<…>(x, W, b); y = Clip(y_unfused, y_min, y_max)     (opset 11+)
  ///
  /// Clip's bounds become constant scalar initializers from opset 11 (an infinite bound is
  /// omitted) and attributes before; LeakyRelu's alpha and HardSigmoid's alpha and beta become
  /// attributes. The activation keeps the fused layer's output value name (and its type); the
  /// layer keeps the node name, and the activation node is named after it. Returns the model
  /// unchanged when it has no fused layer.
  public func unfusingActivations() -> Model {
    let fused = graph.nodeIDs.filter { FusedActivation(of: graph[$0]) != nil }
    guard !fused.isEmpty else { return self }
    var model = self
    let opset = onnxOpsetVersion ?? 0
    for id in fused { model.graph.unfuse(id, opset: opset) }
    if !model.graph.nodeIDs.contains(where: { model.graph[$0].domain == FusedActivation.domain }) {
      model.opsetImports.removeAll { $0.domain == FusedActivation.domain }
    }
    return model
  }
}

extension Graph {
  /// Splits fused layer `id` into the standard layer and activation (see
  /// ``Model/unfusingActivations()``).
  fileprivate mutating func unfuse(_ id: NodeID, opset: Int64) {
    let node = self[id]
    guard let activation = FusedActivation(of: node), let output = node.output(0) else { return }
    let outputName = self[output].name, outputType = self[output].type
    let layerAttributes = node.attributes.filter {
      $0.name != FusedActivation.attributeName && $0.name != FusedActivation.parametersName
    }
    // Names and values below are fresh (uniqueName), so adding cannot fail.
    let layer = try! addNode(
      opType: node.opType, name: node.name, inputs: node.inputs, outputs: [uniqueName(outputName + "_unfused")],
      attributes: layerAttributes)
    let layerOutput = self[layer].outputs[0]!
    updateValue(layerOutput) { $0.type = outputType }
    var inputs: [ValueID?] = [layerOutput]
    var attributes: [Attribute] = []
    switch activation {
    case .clip(let lo, let hi) where opset >= 11:
      let bounds: [(String, Float)] = [("min", lo), ("max", hi)]
      for (suffix, bound) in bounds {
        inputs.append(
          bound.isInfinite ? nil : try! addInitializer(name: uniqueName("\(outputName)_\(suffix)"), Tensor(floats: [bound], shape: [])))
      }
      while inputs.count > 1, inputs.last! == nil { inputs.removeLast() }
    case .clip(let lo, let hi):
      if lo.isFinite { attributes.append(Attribute("min", .float(lo))) }
      if hi.isFinite { attributes.append(Attribute("max", .float(hi))) }
    case .leakyRelu(let alpha): attributes = [Attribute("alpha", .float(alpha))]
    case .hardSigmoid(let alpha, let beta): attributes = [Attribute("alpha", .float(alpha)), Attribute("beta", .float(beta))]
    default: break
    }
    let activationName = node.name.isEmpty ? "" : uniqueNodeName(node.name + "_" + activation.opType.lowercased())
    let act = try! addNode(
      opType: activation.opType, name: activationName, inputs: inputs, outputs: [uniqueName(outputName + "_activated")],
      attributes: attributes)
    let actOutput = self[act].outputs[0]!
    updateValue(actOutput) { $0.type = outputType }
    replaceAllUses(of: output, with: actOutput)
    removeNode(id)
    if self[actOutput].name != outputName { try? rename(actOutput, to: outputName) }
  }

  /// A node name no node of this graph has, derived from `base`.
  private func uniqueNodeName(_ base: String) -> String {
    let used = Set(nodeIDs.map { self[$0].name })
    if !used.contains(base) { return base }
    var i = 1
    while used.contains("\(base)_\(i)") { i += 1 }
    return "\(base)_\(i)"
  }
}
