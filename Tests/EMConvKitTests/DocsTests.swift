import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// The supported-formats tables in README.md and formats.md are generated from the descriptors
/// (`make docs`); this fails when a descriptor changed and the docs were not regenerated.
final class DocsTests: XCTestCase {
    func testFormatTablesMatchDescriptors() throws {
        let table = FormatTable.markdown().trimmingCharacters(in: .whitespacesAndNewlines)
        for doc in ["README.md", "formats.md"] {
            let text = try String(contentsOfFile: SharedTestData.packageRoot + "/" + doc, encoding: .utf8)
            XCTAssertTrue(text.contains(table), "\(doc): formats table is stale; run 'make docs'")
        }
    }

    func testEveryReaderAndWriterHasADescriptorRow() {
        let table = FormatTable.markdown()
        for d in Registry.descriptors { XCTAssertTrue(table.contains("`\(d.name)`"), d.name) }
        XCTAssertEqual(Set(Registry.descriptors.map(\.name)).count, Registry.descriptors.count)
    }
}
