import EMConvTestSupport
print("fixtures generator: not yet")
