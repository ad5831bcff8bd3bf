/// An operator set a model or function imports.
public struct OpsetImport: Hashable, Sendable {
  /// "" (or "ai.onnx") is the default ONNX domain.
  public var domain: String
  public var version: Int64
  public init(domain: String, version: Int64) {
    self.domain = domain
    self.version = version
  }
}

/// A model-local function (`FunctionProto`). Its body is a graph whose inputs and outputs are the
/// function's formal parameters (their types unknown); nodes may take attributes from the
/// function's own by `refAttrName`.
public struct Function: Sendable {
  public var name: String
  public var domain: String
  public var overload: String = ""
  public var body: Graph
  /// Attribute names declared without a default.
  public var attributeNames: [String] = []
  /// Attributes declared with a default value.
  public var attributeDefaults: [Attribute] = []
  public var opsetImports: [OpsetImport] = []
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []

  public init(name: String, domain: String, body: Graph) {
    self.name = name
    self.domain = domain
    self.body = body
  }
}

/// A whole model: ONNX's `ModelProto`.
public struct Model: Sendable {
  public var irVersion: Int64 = 8
  public var opsetImports: [OpsetImport] = []
  public var producerName: String = ""
  public var producerVersion: String = ""
  public var domain: String = ""
  public var modelVersion: Int64 = 0
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  public var graph: Graph
  public var functions: [Function] = []
  /// `training_info`, carried through unchanged.
  public var opaqueTrainingInfo: [OpaqueProto] = []
  /// `configuration` (multi-device), carried through unchanged.
  public var opaqueConfiguration: [OpaqueProto] = []

  public init(graph: Graph) { self.graph = graph }

  /// The imported version of the default ONNX operator set.
  public var onnxOpsetVersion: Int64? {
    opsetImports.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version
  }
}
