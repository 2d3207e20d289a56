"""deploy/k8s: each overlay rendered by `kubectl kustomize`, every object validated offline against the Kubernetes
schemas (kubernetes-validate, strict: unknown fields are errors), and the settings the server relies on checked
against the package's constants. The probes' paths are also hit on a running packaged server in test_deploy.py.
"""
from __future__ import annotations

import copy
import functools
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from mlops_nb.core import project_root
from mlops_nb.deploy import DEFAULT_PORT, LOG_DIR_IN_IMAGE, LOG_DIR_VARIABLE, USER_ID, packaged_app

K8S = project_root() / 'deploy' / 'k8s'
OVERLAYS = sorted(p.name for p in (K8S / 'overlays').iterdir() if p.is_dir())
KUBERNETES_VERSIONS = ('1.30.0', '1.33.0')  # an old supported release and a recent one

pytestmark = pytest.mark.skipif(shutil.which('kubectl') is None, reason='kubectl is not installed (it renders the kustomize overlays)')


def render(overlay: str) -> dict:
    "{kind: object} of an overlay as `kubectl kustomize` renders it (a fresh copy each call)."
    return copy.deepcopy(_render(overlay))


@functools.cache
def _render(overlay: str) -> dict:
    text = subprocess.run(['kubectl', 'kustomize', str(K8S / 'overlays' / overlay)], check=True, capture_output=True, text=True).stdout
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    kinds = {doc['kind']: doc for doc in objects}
    assert len(kinds) == len(objects), 'one object of each kind per overlay'
    return kinds


def test_one_overlay_per_case_study():
    assert OVERLAYS == ['fraud', 'maintenance']


@pytest.mark.parametrize('overlay', OVERLAYS)
@pytest.mark.parametrize('version', KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay, version):
    objects = render(overlay)
    assert set(objects) == {'Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget'}
    for kind, obj in objects.items():
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError naming the field


def test_the_validator_refuses_a_broken_object():
    "The check above can fail: a misspelt field and a wrong type are refused."
    deployment = render('fraud')['Deployment']
    deployment['spec']['template']['spec']['containers'][0]['readinessProbe']['httpGett'] = {}
    with pytest.raises(kubernetes_validate.ValidationError): kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    deployment = render('fraud')['Deployment']
    deployment['spec']['template']['spec']['containers'][0]['ports'][0]['containerPort'] = 'eighty'
    with pytest.raises(kubernetes_validate.ValidationError): kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.fixture(scope='module')
def served_get_paths(tmp_path_factory) -> set:
    "The GET routes of the packaged server (a small package made for the purpose)."
    from test_deploy import complete_run
    from mlops_nb.deploy import package
    root = tmp_path_factory.mktemp('k8s')
    app = packaged_app(package(complete_run(root / 'runs', names=('linear',)), root / 'package'), log_dir='')
    return {route.path for route in app.routes if 'GET' in getattr(route, 'methods', ())}


@pytest.mark.parametrize('overlay', OVERLAYS)
def test_the_deployment_matches_what_the_server_does(overlay, served_get_paths):
    objects = render(overlay)
    pod = objects['Deployment']['spec']['template']
    (container,) = pod['spec']['containers']
    ports = {p['name']: p['containerPort'] for p in container['ports']}
    assert ports == {'http': DEFAULT_PORT}
    paths = served_get_paths
    for probe in ('startupProbe', 'readinessProbe', 'livenessProbe'):
        assert container[probe]['httpGet'] == {'path': '/health', 'port': 'http'} and '/health' in paths
    annotations = pod['metadata']['annotations']
    assert annotations['prometheus.io/scrape'] == 'true' and int(annotations['prometheus.io/port']) == DEFAULT_PORT
    assert annotations['prometheus.io/path'] in paths
    assert container['args'] == ['serve']  # the image's CMD, what SageMaker passes too
    assert set(container['resources']) == {'requests', 'limits'} and set(container['resources']['limits']) == {'cpu', 'memory'}


@pytest.mark.parametrize('overlay', OVERLAYS)
def test_non_root_read_only_with_the_log_on_a_volume(overlay):
    pod = render(overlay)['Deployment']['spec']['template']['spec']
    (container,) = pod['containers']
    assert pod['securityContext']['runAsNonRoot'] is True and pod['securityContext']['runAsUser'] == USER_ID
    security = container['securityContext']
    assert security['readOnlyRootFilesystem'] is True and security['allowPrivilegeEscalation'] is False
    assert security['capabilities']['drop'] == ['ALL']
    env = {e['name']: e['value'] for e in container['env']}
    mounts = {m['mountPath']: m['name'] for m in container['volumeMounts']}
    assert env[LOG_DIR_VARIABLE] == LOG_DIR_IN_IMAGE and LOG_DIR_IN_IMAGE in mounts and '/tmp' in mounts
    assert {v['name'] for v in pod['volumes']} == set(mounts.values())


@pytest.mark.parametrize('overlay', OVERLAYS)
def test_service_autoscaler_and_budget_select_this_deployment(overlay):
    objects = render(overlay)
    deployment = objects['Deployment']
    labels = deployment['spec']['template']['metadata']['labels']
    assert deployment['spec']['selector']['matchLabels'].items() <= labels.items()
    assert labels['app.kubernetes.io/instance'] == overlay  # two case studies in one namespace never select each other
    assert 'replicas' not in deployment['spec']  # the autoscaler owns the count
    assert objects['Service']['spec']['selector'].items() <= labels.items()
    assert objects['Service']['spec']['ports'][0]['targetPort'] == 'http'
    assert objects['PodDisruptionBudget']['spec']['selector']['matchLabels'].items() <= labels.items()
    hpa = objects['HorizontalPodAutoscaler']['spec']
    assert hpa['scaleTargetRef'] == {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': deployment['metadata']['name']}
    assert 2 <= hpa['minReplicas'] < hpa['maxReplicas']
    assert objects['PodDisruptionBudget']['spec']['minAvailable'] < hpa['minReplicas']
    assert deployment['spec']['template']['spec']['containers'][0]['image'].endswith(f'/{overlay}:1')
