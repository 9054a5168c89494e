#!/usr/bin/env bash
# Generates the Python, Java, Go and .NET bindings from the jsii assembly into dist/pacmak/
# (gitignored) and checks them as far as this machine can without the languages' package
# registries:
#   - every target generates, and each embeds the npm tarball its runtime loads, with .jsii in it;
#   - Python: every generated module byte-compiles (python3 -m compileall);
#   - Java: every generated file parses (scripts/bindings/ParseJava.java, JDK only);
#   - Go and .NET: generated only. Compiling them, like compiling the Java and importing the
#     Python, needs the jsii runtime and the cdk8s, cdk8s-plus-27 and constructs packages of
#     each language's registry, and the Go and .NET toolchains.
# Run `npm run jsii` first (`npm test` does): this script reads .jsii and dist/lib.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/pacmak
if [[ ! -f .jsii ]]; then
  echo "pacmak: .jsii not found: run \`npm run jsii\` first" >&2
  exit 1
fi
stale=$(find lib -name '*.ts' -newer .jsii | head -n 3)
if [[ -n "$stale" ]]; then
  echo "pacmak: .jsii is older than $(echo "$stale" | tr '\n' ' ')- run \`npm run jsii\` first" >&2
  exit 1
fi

rm -rf "$out"
# pacmak packs the module with `npm pack`; its prepack would rebuild dist/lib and .jsii, which
# are fresh already, so skip the package's scripts.
npm_config_ignore_scripts=true JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 \
  node_modules/.bin/jsii-pacmak --code-only --no-npmignore --no-fingerprint --outdir "$out" --targets python java go dotnet

tarballs=(
  "$out/python/src/cdk8s_postgres/_jsii/"*.jsii.tgz
  "$out/java/src/main/resources/org/cdk8s/postgres/"*.jsii.tgz
  "$out/go/cdk8spostgres/jsii/"*.tgz
  "$out/dotnet/Cdk8sPostgres/"*.tgz
)
for tarball in "${tarballs[@]}"; do
  if [[ ! -f "$tarball" ]]; then
    echo "pacmak: no embedded npm tarball at $tarball" >&2
    exit 1
  fi
  if ! tar -tzf "$tarball" | grep -x 'package/.jsii' > /dev/null; then
    echo "pacmak: $tarball has no .jsii: the jsii runtime cannot load the package (add .jsii to package.json's files)" >&2
    exit 1
  fi
done
echo "pacmak: python, java, go and dotnet generated in $out, each with the npm tarball and its .jsii"

python3 -m compileall -q "$out/python/src" > /dev/null
echo "pacmak: python: $(find "$out/python/src" -name '*.py' | wc -l) modules byte-compile"

mapfile -t java_sources < <(find "$out/java/src" -name '*.java' | sort)
java scripts/bindings/ParseJava.java "${java_sources[@]}"
