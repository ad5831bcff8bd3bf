import Graph

/// A graph rewrite the pipeline can run.
///
/// A pass declares a stable kebab-case name, a one-line summary, whether it is exact (outputs equal
/// up to float rounding), whether the default pipeline runs it, and its options with defaults. It
/// mutates the model only through the ``Rewriter`` it is given, which logs every change for the
/// report. A pass never loops to a fixed point itself and never removes the dead nodes it leaves:
/// the greedy driver and the pipeline do both.
public protocol Pass: Sendable {
  static var name: String { get }
  static var summary: String { get }
  static var isExact: Bool { get }
  /// Whether the default pipeline (preset `exact`) runs it.
  static var isDefault: Bool { get }
  /// The smallest preset that turns it on (nil: only `--enable` or `--passes` do).
  static var preset: Preset? { get }
  /// Its options, with defaults; `--pass-option NAME.KEY=VALUE` sets them.
  static var options: [PassOption] { get }
  /// Why the default differs for an output target, if it does (printed by `rebirth passes`).
  static var targetNote: String? { get }
  /// Whether a pipeline for `target` runs it by default.
  static func isDefault(for target: OutputTarget) -> Bool
  /// Whether it writes onnxruntime's `com.microsoft` contrib ops, so that it may run only for
  /// `.onnx` output with `--allow-contrib-ops`.
  static var requiresContribOps: Bool { get }

  init(options: PassOptions) throws(PassOptionError)
  /// Rewrites the model held by `rewriter`.
  func run(_ rewriter: inout Rewriter) throws
}

extension Pass {
  public static var options: [PassOption] { [] }
  public static var preset: Preset? { isDefault ? .exact : nil }
  public static var targetNote: String? { nil }
  public static func isDefault(for target: OutputTarget) -> Bool { isDefault }
  public static var requiresContribOps: Bool { false }
}

/// What `rebirth optimize` writes, which decides what pays (a Split is a view in rebirth's runtime
/// but a copy, and a layout reorder, in onnxruntime).
public enum OutputTarget: String, Sendable, CaseIterable {
  /// Standard ONNX.
  case onnx
  /// ONNX that may use onnxruntime's `com.microsoft` contrib ops (`--allow-contrib-ops`).
  case onnxContribOps = "onnx-contrib-ops"
  /// `.tmf`, for rebirth's runtime.
  case tmf
}

/// Named pass sets: each includes the one before it.
public enum Preset: String, Sendable, CaseIterable, Comparable {
  /// The default pipeline: exact passes only.
  case exact
  /// Plus DeepRebirth's approximate slimming, fitted on calibration data.
  case slim
  /// Plus layer-wise factorization.
  case thin

  public static func < (a: Preset, b: Preset) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// A typed option of a pass, with its default.
public struct PassOption: Sendable, Equatable {
  public enum Kind: String, Sendable { case bool, int, float, string }

  public let key: String
  public let kind: Kind
  public let defaultValue: String
  public let summary: String

  public init(_ key: String, _ kind: Kind, default defaultValue: String, _ summary: String) {
    self.key = key
    self.kind = kind
    self.defaultValue = defaultValue
    self.summary = summary
  }

  /// Whether `text` is a valid value of this option.
  func accepts(_ text: String) -> Bool {
    switch kind {
    case .bool: return text == "true" || text == "false"
    case .int: return Int(text) != nil
    case .float: return Double(text).map { $0.isFinite } ?? false
    case .string: return true
    }
  }
}

/// An option value that is wrong for the pass or the option.
public struct PassOptionError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The option values one pass runs with: its defaults, overridden by `--pass-option`.
public struct PassOptions: Sendable, Equatable {
  public let passName: String
  public private(set) var values: [String: String]
  private let declared: [PassOption]

  /// The defaults of `pass`.
  public init(for pass: any Pass.Type) {
    passName = pass.name
    declared = pass.options
    values = Dictionary(uniqueKeysWithValues: pass.options.map { ($0.key, $0.defaultValue) })
  }

  /// Sets `key` to `value`, checking both against the pass's declared options.
  public mutating func set(_ key: String, _ value: String) throws(PassOptionError) {
    guard let option = declared.first(where: { $0.key == key }) else {
      var message = "pass '\(passName)' has no option '\(key)'"
      if let near = nearestName(to: key, among: declared.map(\.key)) { message += "; did you mean '\(near)'?" }
      if declared.isEmpty { message += " (it takes none)" }
      throw PassOptionError(message)
    }
    guard option.accepts(value) else {
      throw PassOptionError("option \(passName).\(key) wants a \(option.kind.rawValue), not '\(value)'")
    }
    values[key] = value
  }

  /// The options that differ from their defaults, sorted by key, as `key=value`.
  public var changedFromDefaults: [String] {
    declared.compactMap { values[$0.key] != $0.defaultValue ? "\($0.key)=\(values[$0.key]!)" : nil }
  }

  public func bool(_ key: String) -> Bool { value(key, .bool) == "true" }
  public func int(_ key: String) -> Int { Int(value(key, .int))! }
  public func float(_ key: String) -> Double { Double(value(key, .float))! }
  public func string(_ key: String) -> String { value(key, .string) }

  private func value(_ key: String, _ kind: PassOption.Kind) -> String {
    guard let option = declared.first(where: { $0.key == key }), option.kind == kind, let v = values[key] else {
      preconditionFailure("pass '\(passName)' reads undeclared \(kind.rawValue) option '\(key)'")
    }
    return v
  }
}
