# Paths of the repository that the package and its unit tests do not need.
[
  ".git"
  "flake.nix"
  "flake.lock"
  "nix"
  "README.md"
  "examples"
  "tests/integration"
  "tests/bench"
  "tests/guest"
]
