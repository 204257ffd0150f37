#!/usr/bin/env bash
# The man page and the bash completion (issue 22 item 3) are written at build time by the CLI itself
# from its option tables (`gradfeat help --man | --bash-completion`, host/cli/gendoc.c). Checks: the
# build's files are what the binary writes; every option each subcommand's --help prints is in that
# command's section of the man page and is what the completion offers after "--" (the same set, in
# both directions); a copy with one option removed is caught (canary); groff renders the page
# without a warning (-ww; a broken copy must warn) and `man -l` reads the installed .gz; the
# completion, sourced into bash and driven through COMP_WORDS/COMP_CWORD as readline would, completes
# subcommands, options, choices, --opt= values, actions and device names. No OpenCL work: ~3 s.
. "$(dirname "$0")/testlib.sh"
B="${GF_BUILD:?GF_BUILD}"
MAN="$B/gradfeat.1"
COMP="$B/gradfeat.bash-completion"
check "the build wrote gradfeat.1, gradfeat.1.gz and gradfeat.bash-completion" \
  '[ -s "$MAN" ] && [ -s "$B/gradfeat.1.gz" ] && [ -s "$COMP" ]'
"$G" help --man > "$t/man"; rc1=$?
"$G" help --bash-completion > "$t/comp"; rc2=$?
check "help --man / --bash-completion exit 0 (rc $rc1 $rc2)" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]'
check "build/gradfeat.1 is what the binary writes" 'cmp -s "$MAN" "$t/man"'
# the page's date is the built commit's (reproducible: not the build clock); none outside a git checkout
if "$G" --version | grep -q "git unknown"; then
  check "no commit: .TH without a date" 'grep -q "^\.TH GRADFEAT 1 \"\" " "$MAN"'
else
  check "the man page is dated by the built commit ($(grep "^\.TH" "$MAN"))" \
    'grep -Eq "^\.TH GRADFEAT 1 \"[0-9]{4}-[0-9]{2}-[0-9]{2}\" " "$MAN"'
fi
check "gradfeat.1.gz holds gradfeat.1" 'gzip -dc "$B/gradfeat.1.gz" | cmp -s - "$MAN"'
check "build/gradfeat.bash-completion is what the binary writes" 'cmp -s "$COMP" "$t/comp"'
"$G" help --bogus > /dev/null 2> "$t/bogus"; rc=$?
check "help --bogus: usage error (rc $rc)" '[ $rc -eq 2 ] && grep -q -- "--man" "$t/bogus"'
check "gradfeat help train = gradfeat train --help" '"$G" help train > "$t/ht" && "$G" train --help | cmp -s - "$t/ht"'
check "gradfeat help --help = gradfeat --help" '"$G" help --help > "$t/hh" && "$G" --help | cmp -s - "$t/hh"'

cmds=$("$G" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}')
check "--help lists the subcommands ($(echo $cmds))" '[ $(echo $cmds | wc -w) -ge 12 ]'

# "  -k, --top-k K  ..." / "      --json ..." -> "-k" "--top-k" / "--json", one a line, sorted
opt_tokens() { sed -n -E 's/^  (-([a-zA-Z]), |    )--([a-z0-9][a-z0-9-]*).*/-\2 --\3/p' | tr ' ' '\n' | grep -v '^-$' | sort; }
help_opts() { "$G" "$1" --help | awk '/^options/ {on = 1} /^examples:/ {on = 0} on' | opt_tokens; }
# the .TP tags of the man page's section for one command, roff escapes removed
man_opts() {
  awk -v h=".SS \"gradfeat $2\"" '$0 == h {on = 1; next} on && /^\.S[SH] / {exit} on && tp {print; tp = 0} on {tp = $0 == ".TP"}' "$1" \
    | sed -E 's/\\f[BIR]//g; s/\\-/-/g; s/^/  /; s/^  --/      --/' | opt_tokens
}
# what the completion offers for "gradfeat [words...] CUR": COMPREPLY, one a line
comp() { bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gradfeat; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP_FILE" "$@"; }

# MAN_FILE COMP_FILE: for every command, --help's options = the man section's = the completion's "--" and
# "-" offers; prints each difference, returns 1 if any
docs_cover() {
  local man=$1 c bad=0
  COMP_FILE=$2
  for c in $cmds; do
    help_opts "$c" > "$t/h.$c"
    man_opts "$man" "$c" > "$t/m.$c"
    { comp "$G" "$c" --; comp "$G" "$c" -; } | sort -u | grep -v '^$' > "$t/c.$c"
    [ -s "$t/h.$c" ] || { echo "  $c --help: no options found"; bad=1; }
    diff "$t/h.$c" "$t/m.$c" > "$t/d" || { echo "  man page, $c (< --help, > man):"; cat "$t/d"; bad=1; }
    diff "$t/h.$c" "$t/c.$c" > "$t/d" || { echo "  completion, $c (< --help, > completion):"; cat "$t/d"; bad=1; }
  done
  return $bad
}
check "every option of every subcommand's --help is in the man page and the completion, nothing else" \
  'docs_cover "$MAN" "$COMP" > "$t/cover"' || cat "$t/cover"
check "... across all $(echo $cmds | wc -w) subcommands ($(cat "$t"/h.* | wc -l) option spellings)" \
  '[ $(cat "$t"/h.* | wc -l) -ge 100 ]'
# canary: one option dropped from a copy of each must be reported
grep -v -- '^\\fB\\-\\-beta2\\fR' "$MAN" > "$t/man.cut"
sed -E '/^    pretrain\)$/,/;;/ s/ --lr-step / /' "$COMP" > "$t/comp.cut"
docs_cover "$t/man.cut" "$t/comp.cut" > "$t/cover.cut"
check "canary: --beta2 missing from the man page is reported" 'grep -q "man page, train" "$t/cover.cut" && grep -q "< --beta2" "$t/cover.cut"' || cat "$t/cover.cut"
check "canary: --lr-step missing from pretrain's completion is reported" 'grep -q "completion, pretrain" "$t/cover.cut" && grep -q "< --lr-step" "$t/cover.cut"' || cat "$t/cover.cut"

# rendering: the roff structure always; groff -ww (every warning) and man -l when installed
check "man page structure: .TH first, NAME, SYNOPSIS, DESCRIPTION, COMMANDS, ENVIRONMENT; balanced .nf/.fi" \
  '[ "$(grep -v "^\.\\\\\"" "$MAN" | head -1 | cut -d" " -f1-2)" = ".TH GRADFEAT" ] &&
   for s in NAME SYNOPSIS DESCRIPTION COMMANDS ENVIRONMENT; do grep -q "^\.SH $s$" "$MAN" || exit 1; done &&
   [ $(grep -c "^\.nf$" "$MAN") -eq $(grep -c "^\.fi$" "$MAN") ] && [ $(grep -c "^\.SS " "$MAN") -eq $(echo $cmds | wc -w) ]'
check "man page: only known macros, no line starting with a quote" \
  '! grep -E "^[.'"'"']" "$MAN" | grep -v -E "^\.(TH|SH|SS|TP|PP|nf|fi|B|RB|I|RI|BR|nh|ad|\\\\\")( |$)" | grep -q .'
if command -v groff > /dev/null; then
  groff -man -Tutf8 -ww -z "$MAN" > /dev/null 2> "$t/groff.err"; rc=$?
  check "groff -man -ww renders gradfeat.1 without a warning (rc $rc)" '[ $rc -eq 0 ] && [ ! -s "$t/groff.err" ]' || head "$t/groff.err"
  { cat "$MAN"; printf '.XY undefined\n\\fQbad font\n'; } > "$t/broken.1"
  groff -man -Tutf8 -ww -z "$t/broken.1" > /dev/null 2> "$t/groff2.err"
  check "canary: groff -ww warns on a broken copy" '[ -s "$t/groff2.err" ]'
else
  echo "note: groff not installed: the page was checked for structure only"
fi
if command -v man > /dev/null && command -v groff > /dev/null; then
  MANWIDTH=80 man -l "$B/gradfeat.1.gz" > "$t/man.txt" 2> "$t/man.err"; rc=$?
  check "man -l gradfeat.1.gz: no warning, the subcommands and options shown (rc $rc)" \
    '[ $rc -eq 0 ] && [ ! -s "$t/man.err" ] && grep -q "GRADFEAT(1)" "$t/man.txt" && grep -q -- "--top-k K" "$t/man.txt" &&
     grep -q "gradfeat pretrain" "$t/man.txt" && grep -q "GRADFEAT_PROBE_L2" "$t/man.txt"' || head "$t/man.err"
fi

# the completion as bash runs it
COMP_FILE=$COMP
check "completion script: bash -n, registers _gradfeat" 'bash -n "$COMP" && bash -c ". \"$COMP\"; complete -p gradfeat" | grep -q -- "-F _gradfeat"'
r() { comp "$G" "$@" | tr '\n' ' ' | sed 's/ $//'; }
check "gradfeat tr<TAB> -> train" '[ "$(r tr)" = "train" ]' || r tr
check "gradfeat <TAB> -> every subcommand" 'for c in $cmds; do r "" | tr " " "\n" | grep -qx "$c" || exit 1; done'
check "gradfeat train --ep<TAB> -> --epochs" '[ "$(r train --ep)" = "--epochs" ]' || r train --ep
check "gradfeat predict --to<TAB> -> --top-k" '[ "$(r predict --to)" = "--top-k" ]'
check "gradfeat train --probe <TAB> -> lbfgs sgd" '[ "$(r train --probe "")" = "lbfgs sgd" ]' || r train --probe ""
check "gradfeat train --probe=<TAB> -> lbfgs sgd" '[ "$(r train --probe = "")" = "lbfgs sgd" ] && [ "$(r train --probe =)" = "lbfgs sgd" ]'
check "gradfeat pretrain --arch r<TAB> -> resnet18c" '[ "$(r pretrain --arch r)" = "resnet18c" ]'
check "gradfeat train --optimizer <TAB> -> adam sgd (a STR option whose placeholder lists its values)" '[ "$(r train --optimizer "")" = "adam sgd" ]'
check "gradfeat train --ntk=<TAB> -> yes no; --ntk <TAB> is not a value" '[ "$(r train --ntk = "")" = "yes no" ] && [ -z "$(r train --ntk "")" ]'
check "gradfeat train --model <TAB> -> nothing (file names: complete -o default)" '[ -z "$(r train --model "")" ]'
check "gradfeat predict -k <TAB> -> nothing (a value)" '[ -z "$(r predict -k "")" ]'
check "gradfeat data <TAB> -> inspect bench" '[ "$(r data "")" = "inspect bench" ]' || r data ""
check "gradfeat cache c<TAB> -> clear; bench <TAB> -> ops linearized trunk" '[ "$(r cache c)" = "clear" ] && [ "$(r bench "")" = "ops linearized trunk" ]'
check "gradfeat cache --device 0 <TAB> -> info clear (the option's value is not the action)" '[ "$(r cache --device 0 "")" = "info clear" ]'
check "gradfeat data inspect <TAB> -> nothing (the path: file names)" '[ -z "$(r data inspect "")" ]'
check "gradfeat --v<TAB> -> --version" '[ "$(r --v)" = "--version" ]'
check "gradfeat help pr<TAB> -> predict pretrain; help --m<TAB> -> --man" '[ "$(r help pr)" = "pretrain predict" ] && [ "$(r help --m)" = "--man" ]'
r selftest --device "" > "$t/dev"
check "gradfeat selftest --device <TAB> -> cpu gpu ..." 'tr " " "\n" < "$t/dev" | grep -qx cpu && tr " " "\n" < "$t/dev" | grep -qx gpu' || cat "$t/dev"
if "$G" devices > "$t/devices" 2> /dev/null; then
  idx=$(awk 'NR == 2 {print $1}' "$t/devices"); pd=$(awk 'NR == 2 {print $2}' "$t/devices")
  check "... and the index and P:D of \`gradfeat devices\` ($idx, $pd)" \
    'tr " " "\n" < "$t/dev" | grep -qx "$idx" && tr " " "\n" < "$t/dev" | grep -qx "$pd"' || cat "$t/dev"
  check "gradfeat train --device=<TAB> and doctor -d <TAB> offer them too" \
    'r train --device = "" | grep -qw "$pd" && r doctor -d "" | grep -qw "$pd"'
fi
finish
