import Foundation
import XCTest

/// A test case with a fresh temporary folder (`tmp`) per test, removed afterwards.
class TempDirectoryTestCase: XCTestCase {
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "emconv-\(String(describing: type(of: self)))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }

    /// A fresh subfolder (e.g. so MIB series detection does not see other cases' files).
    func dir(_ name: String) throws -> String {
        let d = tmp + "/" + name
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
