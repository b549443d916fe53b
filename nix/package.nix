# attestfs built with nixpkgs (the overlay's `attestfs`): the daemon, the
# test wrapper attestfs-run, attestfs-shell (a terminal in a guest) and the OCR helper attestfs-ocr, with the tools
# the daemon starts (QEMU, vde_switch) on its PATH.
{ lib
, stdenv
, src
, pkg-config
, makeWrapper
, fuse3
, json-c
, curl
, tesseract
, leptonica
, qemu
, vde2
, cmocka
}:
stdenv.mkDerivation {
  pname = "attestfs";
  version = lib.fileContents ../VERSION;  # the one definition
  inherit src;

  nativeBuildInputs = [ pkg-config makeWrapper ];
  buildInputs = [ fuse3 json-c curl tesseract leptonica ];
  nativeCheckInputs = [ cmocka ];

  # libcurl is dlopen'ed (backends/rest.c), not linked: by its path here
  makeFlags = [ "PREFIX=${placeholder "out"}" "LIBCURL=${lib.getLib curl}/lib/libcurl.so.4" ];
  buildFlags = [ "attestfs" "attestfs-ocr" "attestfs-run" "attestfs-shell" ];
  # the unit tests (ASan/UBSan) are the flake's checks.unit
  doCheck = false;

  postInstall = ''
    wrapProgram $out/bin/attestfs --prefix PATH : ${lib.makeBinPath [ qemu vde2 ]}
  '';

  meta = {
    description = "A FUSE file system that turns virtual machines into files, for VM tests in shell";
    platforms = lib.platforms.linux;
    mainProgram = "attestfs";
  };
}
