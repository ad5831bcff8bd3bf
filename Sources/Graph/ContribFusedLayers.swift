/// onnxruntime's fused-layer contrib operators (`com.microsoft.FusedConv` and `FusedGemm`), the
/// ONNX spelling of rebirth's fused layers (``FusedActivation``) when the user allows contrib ops
/// (`rebirth optimize --allow-contrib-ops`).
///
///     y = ai.rebirth.Conv<activation = "Clip", activation_params = [0, 6], …>(x, W, b)
///       ⇄  y = com.microsoft.FusedConv<activation = "Clip", activation_params = [0, 6], …>(x, W, b)
///     y = ai.rebirth.Gemm<activation = "LeakyRelu", activation_params = [0.1], …>(a, B, c)
///       ⇄  y = com.microsoft.FusedGemm<activation = "LeakyRelu", activation_alpha = 0.1, …>(a, B, c)
///
/// Only the activations onnxruntime's CPU kernels document are written as contrib ops: FusedConv
/// takes Relu, Tanh, Sigmoid, LeakyRelu, Clip and HardSigmoid; FusedGemm the same without Clip
/// (its kernel refuses Clip). Every other fused layer is written as standard layer and activation
/// nodes. Reading goes the other way for any activation rebirth knows, so rebirth's runtime, its
/// passes and `.tmf` see one fused-layer form whichever way a model arrives.
public enum ContribFusedLayers {
  public static let domain = "com.microsoft"
  public static let fusedConv = "FusedConv"
  public static let fusedGemm = "FusedGemm"
  static let alphaName = "activation_alpha"
  static let betaName = "activation_beta"

  /// The contrib op a fused layer of `opType` with `activation` is written as, if any.
  public static func contribOpType(layer opType: String, activation: FusedActivation) -> String? {
    switch (opType, activation) {
    case (OpType.conv, .relu), (OpType.conv, .tanh), (OpType.conv, .sigmoid), (OpType.conv, .leakyRelu),
      (OpType.conv, .clip), (OpType.conv, .hardSigmoid):
      return fusedConv
    case (OpType.gemm, .relu), (OpType.gemm, .tanh), (OpType.gemm, .sigmoid), (OpType.gemm, .leakyRelu),
      (OpType.gemm, .hardSigmoid):
      return fusedGemm
    default: return nil
    }
  }

  /// FusedGemm's activation attributes: `activation_alpha` / `activation_beta` for the
  /// parameters (LeakyRelu's alpha; HardSigmoid's alpha and beta).
  static func gemmAttributes(_ activation: FusedActivation) -> [Attribute] {
    var list = [Attribute(FusedActivation.attributeName, .string(Array(activation.opType.utf8)))]
    let names = [alphaName, betaName]
    for (name, value) in zip(names, activation.parameters) { list.append(Attribute(name, .float(value))) }
    return list
  }

  /// The activation a contrib fused node records, when it is one rebirth can run: FusedConv with
  /// `activation` and `activation_params` (as rebirth records them), FusedGemm with `activation`
  /// and `activation_alpha`/`activation_beta`; and the layer it fuses. A fourth FusedConv input
  /// (`Z`, added before the activation) is not a rebirth fused layer.
  static func adoptable(_ node: Node) -> (layer: String, activation: FusedActivation)? {
    guard node.domain == domain, let name = node.attribute(FusedActivation.attributeName)?.string else { return nil }
    switch node.opType {
    case fusedConv:
      guard node.inputs.count <= 3,
        let activation = FusedActivation(
          opType: name, parameters: node.attribute(FusedActivation.parametersName)?.floats ?? [])
      else { return nil }
      return (OpType.conv, activation)
    case fusedGemm:
      let parameters = [alphaName, betaName].compactMap { node.attribute($0)?.float }
      guard let activation = FusedActivation(opType: name, parameters: parameters) else { return nil }
      return (OpType.gemm, activation)
    default: return nil
    }
  }
}

extension Model {
  /// The model with every fused layer that has a contrib spelling written as
  /// `com.microsoft.FusedConv`/`FusedGemm` (importing `com.microsoft` version 1); the other
  /// fused layers stay as they are. See ``ContribFusedLayers``.
  public func contribFusingLayers() -> Model {
    var model = self
    var used = false
    for id in graph.nodeIDs {
      let node = graph[id]
      guard let activation = FusedActivation(of: node),
        let contrib = ContribFusedLayers.contribOpType(layer: node.opType, activation: activation)
      else { continue }
      var attributes = node.attributes.filter {
        $0.name != FusedActivation.attributeName && $0.name != FusedActivation.parametersName
      }
      attributes += contrib == ContribFusedLayers.fusedConv ? activation.attributes : ContribFusedLayers.gemmAttributes(activation)
      model.graph.replaceAttributesAndOp(id, opType: contrib, domain: ContribFusedLayers.domain, attributes: attributes)
      used = true
    }
    guard used else { return self }
    model.dropUnusedImport(FusedActivation.domain)
    model.addImport(ContribFusedLayers.domain)
    return model
  }

  /// The model with every `com.microsoft.FusedConv`/`FusedGemm` whose activation rebirth knows
  /// read as rebirth's fused layer (`ai.rebirth` Conv/Gemm); other nodes stay as they are.
  public func adoptingContribFusedLayers() -> Model {
    guard graph.nodeIDs.contains(where: { graph[$0].domain == ContribFusedLayers.domain }) else { return self }
    var model = self
    var used = false
    for id in graph.nodeIDs {
      let node = graph[id]
      guard let (layer, activation) = ContribFusedLayers.adoptable(node) else { continue }
      let attributes =
        node.attributes.filter {
          ![FusedActivation.attributeName, FusedActivation.parametersName, ContribFusedLayers.alphaName, ContribFusedLayers.betaName]
            .contains($0.name)
        } + activation.attributes
      model.graph.replaceAttributesAndOp(id, opType: layer, domain: FusedActivation.domain, attributes: attributes)
      used = true
    }
    guard used else { return self }
    model.dropUnusedImport(ContribFusedLayers.domain)
    model.addImport(FusedActivation.domain)
    return model
  }

  mutating func dropUnusedImport(_ domain: String) {
    if !graph.nodeIDs.contains(where: { graph[$0].domain == domain }) {
      opsetImports.removeAll { $0.domain == domain }
    }
  }

  mutating func addImport(_ domain: String) {
    if !opsetImports.contains(where: { $0.domain == domain }) {
      opsetImports.append(OpsetImport(domain: domain, version: 1))
    }
  }
}

extension Graph {
  /// Gives node `id` a new op type, domain and attributes (none of which may capture values).
  fileprivate mutating func replaceAttributesAndOp(
    _ id: NodeID, opType: String, domain: String, attributes: [Attribute]
  ) {
    // The attributes are plain values copied from the node itself, so this cannot fail.
    try! setAttributes(of: id, attributes)
    updateNode(id) {
      $0.opType = opType
      $0.domain = domain
    }
  }
}
