"""Go templates in the example's Atmos stacks, through a real rollout: stack files are Go templates
(rendered with the component's own sections, as Atmos renders them), manifests stay Jinja."""

from __future__ import annotations

import json

from tests.conftest import Repo


def manifest_without_service_dependency(repo: Repo) -> None:
    """The example's manifest no longer says that ecs/service-api needs ecs/taskdef-api (neither by
    depends_on nor by reading its output): what orders them must come from the stacks."""
    repo.replace(
        "deployments/api.yaml",
        '      ecs/service-api:\n        metadata:\n          depends_on: ["terraform/ecs/taskdef-api"]\n',
        "      ecs/service-api:\n",
    )
    repo.replace(
        "deployments/api.yaml",
        "{{ component['ecs/taskdef-api'].outputs.task_definition_arn }}",
        "arn:aws:ecs:us-east-2:000000000000:task-definition/api:1",
    )


SERVICE = "stacks/catalog/ecs/service-api.yaml"
TFVARS = ".atmos/workdir/api/{target}/ecs%2Fservice-api/ecs-service-api.auto.tfvars.json"


def test_stack_templates_render_per_target_and_reach_terraform(repo: Repo) -> None:
    repo.replace(
        SERVICE,
        "service_name: api",
        'service_name: "{{ .vars.stage }}-{{ .atmos_component | replace \\"/\\" \\"-\\" }}"',
    )
    repo.commit("A templated service name")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tfvars = json.loads((repo.path / TFVARS.format(target="dev")).read_text())
    assert tfvars["service_name"] == "dev-ecs-service-api"
    described = json.loads(repo.cli("describe", "api", "--target", "staging", "--format", "json").stdout)
    assert "staging-ecs-service-api" in json.dumps(described)


def test_jinja_in_a_stack_file_is_refused_with_the_go_template_error_at_its_line(repo: Repo) -> None:
    repo.replace(SERVICE, "service_name: api", 'service_name: "{{ target.name }}"')
    repo.commit("Jinja where Go templates are read")
    proc = repo.cli("validate")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{SERVICE}:10:" in proc.stderr and 'function "target" not defined' in proc.stderr
    assert "manifests use Jinja" in proc.stderr and "Traceback" not in proc.stderr


def test_settings_depends_on_in_the_stacks_orders_the_rollout(repo: Repo) -> None:
    # The manifest no longer says it: the stack's settings.depends_on alone makes the edge.
    manifest_without_service_dependency(repo)
    repo.commit("Only the stacks say what the service needs")
    matrix = json.loads(repo.cli("matrix", "api", "--target", "dev", "--format", "json").stdout)
    jobs = {job["component"]: job for job in matrix["include"]}
    assert "terraform/ecs/taskdef-api" in jobs["ecs/service-api"]["depends_on"]
    assert jobs["ecs/taskdef-api"]["wave"] < jobs["ecs/service-api"]["wave"]
    text = repo.cli("graph", "api", "--target", "dev").stdout
    assert "apply:api:dev:ecs/taskdef-api" in text.split("plan:api:dev:ecs/service-api", 1)[1].splitlines()[0]
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    order = [line for line in proc.stdout.splitlines() if ": applied" in line]
    names = [
        next(n for n in ("taskdef-api", "service-api", "ecr/api", "alarms") if n in line) for line in order
    ]
    assert names.index("taskdef-api") < names.index("service-api")


def test_a_stack_dependency_outside_the_deployment_is_refused_at_its_line(repo: Repo) -> None:
    repo.replace(SERVICE, "            component: ecs/taskdef-api", "            component: rds/main")
    repo.commit("A dependency this deployment does not deploy")
    proc = repo.cli("validate")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "depends on rds/main (settings.depends_on.1), which is no component of this deployment" in proc.stderr
    )
    assert f"{SERVICE}:15:" in proc.stderr and "Traceback" not in proc.stderr


def test_terraform_output_and_env_in_a_stack_reach_terraform_in_order(repo: Repo) -> None:
    # The manifest no longer wires the task definition: the stack reads it with !terraform.output.
    repo.replace(
        "deployments/api.yaml",
        "          task_definition_arn: \"{{ component['ecs/taskdef-api'].outputs.task_definition_arn }}\"\n",
        "",
    )
    repo.replace(
        "deployments/api.yaml",
        '      ecs/service-api:\n        metadata:\n          depends_on: ["terraform/ecs/taskdef-api"]\n',
        "      ecs/service-api:\n",
    )
    repo.replace(
        SERVICE,
        "        service_name: api\n",
        "        service_name: !env API_SERVICE_NAME api\n"
        "        task_definition_arn: !terraform.output ecs/taskdef-api task_definition_arn\n",
    )
    repo.replace(
        SERVICE,
        "      settings:\n        depends_on:\n          1:\n            component: ecs/taskdef-api\n",
        "",
    )
    repo.commit("The stack reads the task definition itself")
    proc = repo.doit("rollout:api:dev", env={"API_SERVICE_NAME": "api-from-env"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tfvars = json.loads((repo.path / TFVARS.format(target="dev")).read_text())
    taskdef = json.loads((repo.path / ".atmos/state/api/dev/ecs/taskdef-api.tfstate").read_text())
    assert tfvars["task_definition_arn"] == taskdef["outputs"]["task_definition_arn"]["value"]
    assert tfvars["service_name"] == "api-from-env"
    described = json.loads(repo.cli("describe", "api", "--target", "dev", "--format", "json").stdout)
    assert "terraform/ecs/taskdef-api" in json.dumps(described)


def test_atmos_yaml_env_is_the_lowest_layer_of_every_components_env(repo: Repo) -> None:
    """atmos.yaml's `env:` is set for every command Atmos runs, under a component's own `env`
    (Atmos's MergeGlobalEnv, then the component's): here, every Terraform component's env starts
    from it. The Atmos view of `describe` (the stacks alone) does not show it, as Atmos's does not."""
    atmos_yaml = (repo.path / "atmos.yaml").read_text()
    repo.write(
        "atmos.yaml", atmos_yaml + 'env:\n  TF_IN_AUTOMATION: "1"\n  SHARED_BY: global\n  RETRIES: 3\n'
    )
    repo.replace(
        SERVICE,
        "      vars:\n        service_name: api\n",
        "      env:\n        SHARED_BY: stack\n      vars:\n        service_name: api\n",
    )
    repo.commit("A global environment, one variable set again by a component")
    proc = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    components = json.loads(proc.stdout)["targets"]["dev"]["components"]
    service, taskdef = components["ecs/service-api"], components["ecs/taskdef-api"]
    assert service["env"] == {"TF_IN_AUTOMATION": "1", "SHARED_BY": "stack", "RETRIES": "3"}
    assert taskdef["env"] == {"TF_IN_AUTOMATION": "1", "SHARED_BY": "global", "RETRIES": "3"}
    assert service["atmos"]["env"] == {"SHARED_BY": "stack"}
    # A value that is not one refused at its line.
    repo.write("atmos.yaml", atmos_yaml + "env:\n  NESTED:\n    a: 1\n")
    refused = repo.cli("describe", "api", "--target", "dev")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "env.NESTED must be a single value" in refused.stderr and "atmos.yaml:" in refused.stderr


def test_dependencies_tools_are_checked_on_the_runner_before_the_component_plans(repo: Repo) -> None:
    """Atmos installs a component's `dependencies.tools`; atmos-tasks installs nothing and checks
    them before the component plans: a tool missing or at a version the constraint refuses fails that
    component's task (exit 1, the file and line said), the others roll out; met, it deploys."""
    repo.replace(
        SERVICE,
        "      vars:\n        service_name: api\n",
        "      dependencies:\n        tools:\n          terraform: '^9.0.0'\n"
        "      vars:\n        service_name: api\n",
    )
    repo.commit("The service wants a Terraform this runner does not have")
    validated = repo.cli("validate", "api")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    failed = repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "dependencies.tools wants terraform ^9.0.0, and this runner has" in out
    assert f"({SERVICE}:" in out and "terraform/ecs/taskdef-api: applied" in out
    repo.replace(SERVICE, "terraform: '^9.0.0'", "terraform: '~> 1.0'")
    repo.commit("A constraint the runner meets")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "terraform/ecs/service-api: applied" in proc.stdout


def test_an_atmos_hook_resolves_and_the_rollout_refuses_it_before_the_component_plans(repo: Repo) -> None:
    """Atmos runs a component's `hooks` around Terraform (a store hook writes outputs after the
    apply); atmos-tasks runs none yet. The stacks still resolve (`describe` shows the hook), `validate`
    warns, and the rollout refuses that component before it plans (exit 1, the hook's file and line);
    the others roll out. `events: []` in the stack turns the hook off, and the component deploys."""
    repo.replace(
        SERVICE,
        "      vars:\n        service_name: api\n",
        "      hooks:\n        publish:\n          events: [after-terraform-apply]\n          kind: store\n"
        "          name: prod/ssm\n          outputs:\n            service_arn: .service_arn\n"
        "      vars:\n        service_name: api\n",
    )
    repo.commit("The service publishes its outputs to a store after each apply")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["atmos"]["hooks"]["publish"]["name"] == "prod/ssm"
    validated = repo.cli("validate", "api", "--format", "json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    warnings = json.loads(validated.stdout)["deployments"]["api"]["warnings"]
    assert any("Atmos hook 'publish' (kind store → prod/ssm" in w for w in warnings), warnings
    failed = repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert f"Atmos hook 'publish' (kind store → prod/ssm, on after-terraform-apply; {SERVICE}:" in out
    assert "terraform/ecs/taskdef-api: applied" in out and "terraform/ecs/service-api: applied" not in out
    repo.replace(SERVICE, "events: [after-terraform-apply]", "events: []")
    repo.commit("The hook is turned off; CI publishes the outputs")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "terraform/ecs/service-api: applied" in proc.stdout


def test_a_store_read_in_a_stack_resolves_as_written_and_the_rollout_refuses_it(repo: Repo) -> None:
    """`!secret` (and `!store`) read an Atmos store, which atmos-tasks does not read yet: the stacks
    resolve and `describe` shows the function as written, never a value; the rollout refuses that
    component before Terraform runs (exit 1, the file and line), and the others roll out."""
    repo.replace(
        SERVICE,
        "      vars:\n        service_name: api\n",
        "      env:\n        API_TOKEN: !secret API_TOKEN\n      vars:\n        service_name: api\n",
    )
    repo.commit("The service reads a token from a store")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["env"]["API_TOKEN"] == "!secret API_TOKEN"
    failed = repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert f"!secret API_TOKEN ({SERVICE}:" in out and "reads no Atmos store yet" in out
    assert "terraform/ecs/taskdef-api: applied" in out and "terraform/ecs/service-api: applied" not in out


def test_an_atmos_auth_identity_resolves_and_the_rollout_runs_only_with_the_runners_credentials(
    repo: Repo,
) -> None:
    """atmos.yaml's `auth:` names the identity Atmos would assume for every component; atmos-tasks
    assumes none. The stacks resolve (`describe` shows the component's merged `auth`), `validate`
    warns, the rollout refuses each Terraform component before it plans (exit 1, the identity and its
    line); with ATMOS_TASKS_AUTH=runner, Terraform runs with the runner's own credentials."""
    atmos_yaml = (repo.path / "atmos.yaml").read_text()
    repo.write(
        "atmos.yaml",
        atmos_yaml
        + "auth:\n  identities:\n    dev-admin:\n      kind: aws/permission-set\n      default: true\n"
        + "      credentials:\n        secret_access_key: wJalr-never-shown\n",
    )
    repo.commit("Atmos assumes dev-admin for every component")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["atmos"]["auth"]["identities"]["dev-admin"]["default"] is True
    assert "wJalr-never-shown" not in described.stdout  # an identity's credentials are masked
    validated = repo.cli("validate", "api", "--format", "json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    warnings = json.loads(validated.stdout)["deployments"]["api"]["warnings"]
    assert any("as identity 'dev-admin' (atmos.yaml:" in w for w in warnings), warnings
    failed = repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "Atmos auth would run Terraform as identity 'dev-admin' (atmos.yaml:" in out
    assert "ATMOS_TASKS_AUTH=runner" in out and "terraform/ecs/taskdef-api: applied" not in out
    repo.env = {**repo.env, "ATMOS_TASKS_AUTH": "runner"}
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "terraform/ecs/service-api: applied" in proc.stdout


def test_describe_shows_a_component_whose_folder_is_missing_and_validate_refuses_it(repo: Repo) -> None:
    """`atmos describe component` needs no module folder; neither does `describe` here: it shows the
    component. What would run it refuses it as bad input, at the line that names the folder:
    `validate`, and the rollout."""
    repo.replace(SERVICE, "component: ecs-service", "component: ecs-service-v2")
    repo.commit("The service names a folder that is not there yet")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["atmos"]["component"] == "ecs-service-v2"
    for proc in (repo.cli("validate", "api"), repo.doit("rollout:api:dev")):
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert "folder 'ecs-service-v2' is neither under components/terraform/ nor vendored" in out
        assert f"{SERVICE}:" in out


def test_an_exec_in_atmos_yaml_env_without_the_opt_in_resolves_and_the_rollout_refuses_it(repo: Repo) -> None:
    """atmos.yaml's `env:` may run a command (`!exec gh auth token`), only with the opt-in. Without
    it the value is kept as written: `describe` shows it, and the rollout refuses each component whose
    env holds it before Terraform runs (exit 1, its line); with the opt-in, the command runs."""
    atmos_yaml = (repo.path / "atmos.yaml").read_text()
    repo.write("atmos.yaml", atmos_yaml + "env:\n  GREETING: !exec echo hello\n")
    repo.commit("A global environment variable from a command")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["env"]["GREETING"] == "!exec echo hello"
    failed = repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "!exec echo hello (atmos.yaml:" in out and "running commands is not enabled" in out
    assert "terraform/ecs/service-api: applied" not in out
    repo.write(
        "atmos.yaml",
        atmos_yaml + "yaml_functions:\n  exec:\n    enabled: true\nenv:\n  GREETING: !exec echo hello\n",
    )
    repo.commit("The repository allows commands")
    described = repo.cli("describe", "api", "--target", "dev", "--format", "json")
    service = json.loads(described.stdout)["targets"]["dev"]["components"]["ecs/service-api"]
    assert service["env"]["GREETING"] == "hello"
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_local_that_reads_the_clock_is_read_again_on_every_rollout(repo: Repo) -> None:
    """A file's locals are rendered as the file is read, before any component: one that reads the
    clock must not let the resolve memo serve the components as they resolved before."""
    text = (repo.path / SERVICE).read_text()
    repo.write(SERVICE, "locals:\n  stamp: '{{ now | date \"150405.000000\" }}'\n" + text)
    repo.replace(SERVICE, "service_name: api", 'service_name: "api-{{ .locals.stamp }}"')
    repo.commit("The service's name carries the time its stack was read")
    first = repo.doit("rollout:api:dev")
    assert first.returncode == 0, first.stdout + first.stderr
    second = repo.doit("rollout:api:dev")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "terraform/ecs/service-api: applied" in second.stdout, second.stdout
    assert "as resolved before" not in second.stdout
